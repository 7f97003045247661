"""Training throughput: the published recipe (pad to the longest sample in each micro-batch) vs packing.

Both runs train the same ~30M-parameter Llama (random weights, built locally with ``g4t.tiny``) with
LoRA r=16 on q/k/v/o, on the same samples in the published GPT4Tools format, in the same order, for
the same number of steps, in one process, with the pieces ``lora_finetune.py`` uses (tokenization,
the published padding collator vs ``--packing``, the attention each picks). The two runs alternate
step by step on the same micro-batches, so both see the same load on a shared machine. Reported:
non-padding tokens per second of each (wall clock and per CPU-second), their ratio, and the loss
of the first steps (the two must agree within numerical noise: the batches hold the same samples,
only the padding differs).

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py            # ~4-6 minutes on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py --samples 32 --micro_batch_size 8

The samples follow the published data generator: a prompt with 2-5 tools (target tool first, then
random others, shuffled), an optional image line with a 5-caption description, the user request, a
chain cut at a random step (earlier steps appended with their observations), and as output either
the next tool call or the final answer; half are alpaca-style negatives (no tool needed) whose
answers vary from a few words to a few paragraphs. Tool names are the published ones; their
descriptions are written in the published style.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOOL_NAMES = [
    "Instruct Image Using Text",
    "Generate Image From User Input Text",
    "Get Photo Description",
    "Edge Detection On Image",
    "Generate Image Condition On Canny Image",
    "Line Detection On Image",
    "Generate Image Condition On Line Image",
    "Hed Detection On Image",
    "Generate Image Condition On Soft Hed Boundary Image",
    "Sketch Detection On Image",
    "Generate Image Condition On Sketch Image",
    "Pose Detection On Image",
    "Generate Image Condition On Pose Image",
    "Generate Image Condition On Segmentations",
    "Predict Depth On Image",
    "Generate Image Condition On Depth",
    "Predict Normal Map On Image",
    "Generate Image Condition On Normal Map",
    "Answer Question About The Image",
    "Segment the Image",
    "Detect the Give Object",
    "Segment the given object",
    "Remove Something From The Photo",
    "Replace Something From The Photo",
]
WORDS = (
    "the a dog cat man woman red blue green sofa table window street car tree sky picture photo image small large "
    "sitting standing next to on in front of behind with two three people playing holding looking at white black "
    "wooden old young bright dark kitchen room park beach water field building city road sign bus train plate food"
).split()


def _description(name: str, rng: random.Random) -> str:
    what = name.lower()
    args = rng.choice(
        [
            "a string, representing the image_path",
            "a comma separated string of two, representing the image_path and the text",
            "a comma separated string of two, representing the image_path and the user description",
        ]
    )
    return (
        f"useful when you want to {what}. like: {rng.choice(['generate', 'detect', 'describe'])} the "
        f"{rng.choice(WORDS)} of this image. The input to this tool should be {args}. "
    )


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def make_samples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` records in the published ``{"instruction", "input", "output"}`` format with varied lengths."""
    from g4t.prompts import Step, format_steps, human_response, image_history, render_training_prompt, tool_response

    rng = random.Random(seed)
    descriptions = {name: _description(name, rng) for name in TOOL_NAMES}
    records = []
    for _ in range(n):
        target = rng.choice(TOOL_NAMES)
        others = rng.sample([t for t in TOOL_NAMES if t != target], rng.randint(2, 5) - 1)
        tools = [target, *others]
        rng.shuffle(tools)
        image = f"{rng.choice(['image/', 'images/', 'cache/', ''])}{''.join(rng.choices('abcdefghijklmnop', k=8))}.png"
        history = image_history(image, ". ".join(_sentence(rng, 6, 12) for _ in range(5))) if rng.random() < 0.8 else ""
        request = _sentence(rng, 4, 16)
        prompt = render_training_prompt([(t, descriptions[t]) for t in tools], history, request)
        if rng.random() < 0.5:  # alpaca-style negative: no tool, a free-length answer
            output = human_response(_sentence(rng, 5, 320))
        else:
            n_steps = rng.randint(0, 3)
            steps = [
                Step(rng.choice(tools), f"{image}, {_sentence(rng, 1, 4)}", f"image/{rng.randint(0, 10**6)}.png")
                for _ in range(n_steps)
            ]
            prompt += format_steps(steps)
            output = (
                human_response(f"Result saved as image/{rng.randint(0, 10**6)}.png")
                if n_steps and rng.random() < 0.5
                else tool_response(target, f"{image}, {_sentence(rng, 1, 4)}")
            )
        records.append({"instruction": prompt, "input": "", "output": output})
    return records


def _lora_model(model_dir: str, attn: str, seed: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn)
    model.config.use_cache = False
    torch.manual_seed(seed)  # same LoRA init in both runs
    lora = LoraConfig(
        r=16,
        lora_alpha=16,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    model = get_peft_model(model, lora).train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.0)
    return model, optim


def run_interleaved(model_dir: str, records: list[dict], args) -> tuple[dict, dict]:
    """Train both recipes in lockstep on the same micro-batches: A step, B step, A step, ...

    Alternating steps makes both runs see the same machine load (this box is shared), so the ratio
    is robust even when the absolute tokens/s are not. The pieces are the ones ``lora_finetune.py``
    uses: ``tokenize_records``, ``make_collator`` (published padding / flattening) and the attention
    picked by ``pick_attn_implementation`` (sdpa / ``g4t_varlen_sdpa``).
    """
    import random as _random

    from transformers import AutoTokenizer

    from g4t.prompts import load_template
    from g4t.train.packing import make_collator, pick_attn_implementation
    from g4t.train.tokenize import tokenize_records

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.unk_token
    tok.padding_side = "right"
    samples, stats = tokenize_records(tok, load_template("gpt4tools"), records, args.cutoff_len)
    order = list(range(len(samples)))
    _random.Random(args.seed).shuffle(order)  # random order, no length grouping (published baseline)
    batches = [
        [samples[i] for i in order[k : k + args.micro_batch_size]] for k in range(0, len(order), args.micro_batch_size)
    ]
    runs = {}
    for label, packing in (("published (pad to longest)", False), ("packing (padding-free)", True)):
        attn = pick_attn_implementation("auto", packing, cuda=False)
        model, optim = _lora_model(model_dir, attn, args.seed)
        runs[label] = {
            "label": label,
            "model": model,
            "optim": optim,
            "collate": make_collator(tok, packing),
            "seconds": 0.0,
            "cpu": 0.0,
            "tokens": 0,
            "padded_tokens": 0,
            "losses": [],
        }
    for step, batch in enumerate(batches):
        real = sum(len(s["input_ids"]) for s in batch)
        for r in runs.values():
            inputs = r["collate"](batch)
            t0, c0 = time.perf_counter(), time.process_time()
            loss = r["model"](**inputs).loss
            loss.backward()
            r["optim"].step()
            r["optim"].zero_grad(set_to_none=True)
            t1, c1 = time.perf_counter(), time.process_time()
            r["losses"].append(loss.item())
            if step > 0:  # the first step of each is warm-up
                r["seconds"] += t1 - t0
                r["cpu"] += c1 - c0
                r["tokens"] += real
                r["padded_tokens"] += inputs["input_ids"].numel()
            print(
                f"step {step + 1}/{len(batches)} {r['label']:<28} loss {r['losses'][-1]:.4f} "
                f"{real / (t1 - t0):7.0f} tok/s",
                flush=True,
            )
    out = []
    for r in runs.values():
        out.append(
            {
                "label": r["label"],
                "tokens": r["tokens"],
                "padded_tokens": r["padded_tokens"],
                "seconds": r["seconds"],
                "tok_s": r["tokens"] / r["seconds"],
                "tok_cpu_s": r["tokens"] / r["cpu"],
                "losses": r["losses"],
            }
        )
    print(stats.summary(args.cutoff_len))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=64, help="training samples (same for both runs)")
    parser.add_argument("--micro_batch_size", type=int, default=8, help="published README: 8")
    parser.add_argument("--cutoff_len", type=int, default=2048, help="published README: 2048")
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_layers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    import warnings

    import torch

    from g4t.tiny import build_llama

    warnings.filterwarnings("ignore", category=FutureWarning)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with tempfile.TemporaryDirectory() as tmp:
        records = make_samples(args.samples, args.seed)
        texts = [r["instruction"] + r["output"] for r in records[:50]]
        model_dir = str(
            build_llama(
                Path(tmp) / "llama",
                hidden_size=args.hidden_size,
                num_layers=args.num_layers,
                num_heads=8,
                num_kv_heads=8,
                vocab_size=2000,
                tokenizer_texts=texts,
            )
        )
        n_params = sum(
            p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(model_dir).parameters()
        )
        base, new = run_interleaved(model_dir, records, args)

    print(
        f"\nmodel: Llama {n_params / 1e6:.1f}M params, LoRA r=16 q/k/v/o; {args.samples} samples, "
        f"micro-batch {args.micro_batch_size}, cutoff_len {args.cutoff_len}, threads {torch.get_num_threads()}"
    )
    for r in (base, new):
        print(
            f"{r['label']:<28} {r['tok_s']:8.0f} non-padding tok/s wall, {r['tok_cpu_s']:8.0f} per CPU-second  "
            f"({r['tokens']:,} real tokens, {r['padded_tokens']:,} computed, in {r['seconds']:.1f} s)"
        )
    ratio = new["tok_s"] / base["tok_s"]
    print(f"speed-up: {ratio:.2f}x wall-clock ({new['tok_cpu_s'] / base['tok_cpu_s']:.2f}x in CPU time)")
    k = min(4, len(base["losses"]), len(new["losses"]))
    diffs = [abs(a - b) for a, b in zip(base["losses"][:k], new["losses"][:k], strict=True)]
    print("first-step losses  published: " + " ".join(f"{x:.4f}" for x in base["losses"][:k]))
    print("                   packing:   " + " ".join(f"{x:.4f}" for x in new["losses"][:k]))
    print(f"max |difference|: {max(diffs):.2e} ({'agree' if max(diffs) < 1e-2 else 'DISAGREE'})")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"published": base, "packing": new, "ratio": ratio, "mean_loss_diff": statistics.mean(diffs)}, indent=2
            )
        )


if __name__ == "__main__":
    main()
