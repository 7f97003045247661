"""Training throughput: the published recipe (pad to the longest sample in each micro-batch) vs packing.

Three runs train the same ~35M-parameter Llama (random weights, built locally with ``testkit.tiny``: hidden
384, 6 layers, and the Llama / Vicuna vocabulary of 32000 with a separate ``lm_head``) with LoRA r=16
on q/k/v/o, on the same samples in the published GPT4Tools format, in the same order, for the same
number of steps, in one process, with the pieces ``lora_finetune.py`` uses:

* published: ``DataCollatorForSeq2Seq`` padding to the longest sample (multiple of 8), sdpa, logits
  at every position;
* packing: ``--packing`` (padding-free rows, attention kept per sample), logits at every position;
* packing + trained logits: what ``lora_finetune.py --packing`` runs: also ``logits_to_keep``, so the
  vocabulary projection and softmax run only where the next token is trained.

The runs alternate step by step on the same micro-batches, so all see the same load on a shared
machine. Reported: non-padding tokens per second of each (wall clock and per CPU-second), the ratios,
the padding the published collator computes (random order, and with ``--group_by_length``), and the
first-step losses (they must agree within numerical noise: the batches hold the same samples).

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py --plot bench/results/train_throughput.png  # ~10 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py --samples 16   # ~2 minutes

The samples follow the published data generator with the published tool names and descriptions
(``make_samples``); half are Alpaca-GPT4-style negatives with answer lengths matching that dataset.
Results of a run: ``bench/results/train_throughput.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

WORDS = (
    "the a dog cat man woman red blue green sofa table window street car tree sky picture photo image small large "
    "sitting standing next to on in front of behind with two three people playing holding looking at white black "
    "wooden old young bright dark kitchen room park beach water field building city road sign bus train plate food "
    "because however which could would should important example information process system different between "
    "explain describe following reasons history language computer science health benefits environment energy"
).split()
# Alpaca-GPT4 answers (the published negatives): 52,002 records take 88.6 MB with instruction, input, output
# and a "text" field repeating them after the ~170-character Alpaca header, i.e. ~770 characters of
# instruction + input + output per record, ~675 of them output. Answer lengths are drawn log-normally with
# that mean (median ~490 characters, a tail of multi-paragraph answers), capped at 4,000 characters.
NEGATIVE_MEAN_CHARS, NEGATIVE_SIGMA, NEGATIVE_MAX_CHARS = 675, 0.8, 4000


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _text_of_length(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    n = 0
    while n < chars:
        words.append(rng.choice(WORDS))
        n += len(words[-1]) + 1
    return " ".join(words)


def make_samples(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` records in the published ``{"instruction", "input", "output"}`` format with published lengths.

    Tool names and descriptions are the published ones (from the registry); each prompt holds 2-5 of
    them (target first, then random others, shuffled), an image line with a 5-caption description
    (always for tool samples, half of the negatives, as published), the request, and for tool samples a chain cut at a random step. Half are negatives with
    Alpaca-GPT4-length answers (see ``NEGATIVE_MEAN_CHARS``). The published ``gpt4tools_71k.json``
    averages ~3.2 KB per record (229 MB / 71K); these average about the same (printed by ``main``).
    """
    import math

    from g4t.data.catalog import PUBLISHED_TRAINING_TOOLS, registered_tools
    from g4t.prompts import Step, format_steps, human_response, image_history, render_training_prompt, tool_response

    specs = registered_tools()
    descriptions = {name: specs[name].description for name in PUBLISHED_TRAINING_TOOLS}
    names = list(descriptions)
    rng = random.Random(seed)
    mu = math.log(NEGATIVE_MEAN_CHARS) - NEGATIVE_SIGMA**2 / 2
    records = []
    for _ in range(n):
        target = rng.choice(names)
        others = rng.sample([t for t in names if t != target], rng.randint(2, 5) - 1)
        tools = [target, *others]
        rng.shuffle(tools)
        image = f"{rng.choice(['image/', 'images/', 'cache/', ''])}{''.join(rng.choices('abcdefghijklmnop', k=8))}.png"
        negative = rng.random() < 0.5  # as many negatives as positives (published --alpaca-ratio 1.0)
        caption = ". ".join(_sentence(rng, 6, 12) for _ in range(5))  # 5 COCO-like captions
        history = image_history(image, caption) if not negative or rng.random() < 0.5 else ""
        request = _sentence(rng, 4, 16)
        prompt = render_training_prompt([(t, descriptions[t]) for t in tools], history, request)
        if negative:  # alpaca-style: no tool, an Alpaca-GPT4-length answer
            chars = min(NEGATIVE_MAX_CHARS, int(rng.lognormvariate(mu, NEGATIVE_SIGMA)))
            output = human_response(_text_of_length(rng, chars))
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


RUNS = (  # label, packing, logits only at trained positions
    ("published (pad to longest)", False, False),
    ("packing", True, False),
    ("packing + trained logits", True, True),
)


def run_interleaved(model_dir: str, records: list[dict], args) -> list[dict]:
    """Train the recipes of ``RUNS`` in lockstep on the same micro-batches: A step, B step, C step, A step, ...

    Alternating steps makes every run see the same machine load (this box is shared), so the ratios
    are robust even when the absolute tokens/s are not. The pieces are the ones ``lora_finetune.py``
    uses: ``tokenize_records``, ``make_collator`` (published padding / flattening, with or without
    ``logits_to_keep``) and the attention picked by ``pick_attn_implementation`` (sdpa / ``g4t_varlen_sdpa``).
    """
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from g4t.prompts import load_template
    from g4t.train.packing import make_collator, pick_attn_implementation
    from g4t.train.tokenize import tokenize_records

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.unk_token
    tok.padding_side = "right"
    samples, stats = tokenize_records(tok, load_template("gpt4tools"), records, args.cutoff_len)
    print(stats.summary(args.cutoff_len))
    mb = args.micro_batch_size
    order = list(range(len(samples)))
    random.Random(args.seed).shuffle(order)  # random order, no length grouping (published default sampler)
    batches = [[samples[i] for i in order[k : k + mb]] for k in range(0, len(order), mb)]
    lengths = [len(s["input_ids"]) for s in samples]
    grouped = get_length_grouped_indices(lengths, mb, generator=torch.Generator().manual_seed(args.seed))
    grouped_computed = sum(
        -(-max(lengths[i] for i in grouped[k : k + mb]) // 8) * 8 * len(grouped[k : k + mb])
        for k in range(0, len(grouped), mb)
    )
    runs = []
    for label, packing, logits_only in RUNS:
        attn = pick_attn_implementation("auto", packing, cuda=False)
        model, optim = _lora_model(model_dir, attn, args.seed)
        runs.append(
            {
                "label": label,
                "model": model,
                "optim": optim,
                "collate": make_collator(tok, packing, loss_logits_only=logits_only),
                "seconds": 0.0,
                "cpu": 0.0,
                "tokens": 0,
                "computed_tokens": 0,
                "losses": [],
            }
        )
    for step, batch in enumerate(batches):
        real = sum(len(s["input_ids"]) for s in batch)
        for r in runs:
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
                r["computed_tokens"] += inputs["input_ids"].numel()
            print(
                f"step {step + 1}/{len(batches)} {r['label']:<28} loss {r['losses'][-1]:.4f} "
                f"{real / (t1 - t0):7.0f} tok/s",
                flush=True,
            )
    total = sum(lengths)
    print(
        f"padding computed by the published collator: random order (timed here) "
        f"{1 - runs[0]['tokens'] / runs[0]['computed_tokens']:.1%}; with --group_by_length (not timed) "
        f"{1 - total / grouped_computed:.1%}"
    )
    keys = ("label", "tokens", "computed_tokens", "seconds", "losses")
    return [
        {**{k: r[k] for k in keys}, "tok_s": r["tokens"] / r["seconds"], "tok_cpu_s": r["tokens"] / r["cpu"]}
        for r in runs
    ]


def plot(results: list[dict], path: str) -> None:
    """Bar chart of non-padding tokens/s per recipe, with the ratio to the published recipe on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results[0]["tok_s"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh([r["label"] for r in results][::-1], [r["tok_s"] for r in results][::-1], color="#4c78a8")
    for bar, r in zip(bars, results[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['tok_s'] / base:.2f}x", va="center")
    ax.set_xlabel("non-padding tokens/s (LoRA training, CPU)")
    ax.set_xlim(0, max(r["tok_s"] for r in results) * 1.18)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=64, help="training samples (same for every run)")
    parser.add_argument("--micro_batch_size", type=int, default=8, help="published README: 8")
    parser.add_argument("--cutoff_len", type=int, default=2048, help="published README: 2048")
    parser.add_argument("--hidden_size", type=int, default=384)
    parser.add_argument("--num_layers", type=int, default=6)
    parser.add_argument("--num_heads", type=int, default=6)
    parser.add_argument("--vocab_size", type=int, default=32000, help="model vocabulary (Llama / Vicuna: 32000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--base_model",
        default=None,
        help="a real model instead of the random Llama: Hub id, folder, .gguf file or smollm2 (packaged SmolLM2)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--plot", help="also draw a bar chart of the three recipes to this PNG")
    args = parser.parse_args()
    if args.samples <= args.micro_batch_size:
        parser.error(
            f"--samples {args.samples} gives one micro-batch of {args.micro_batch_size}: the first step is warm-up "
            "and is not timed; use at least two micro-batches"
        )

    import warnings

    import torch
    from transformers import AutoModelForCausalLM

    from g4t.llm.sources import resolve_model
    from testkit.tiny import build_llama

    warnings.filterwarnings("ignore", category=FutureWarning)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with tempfile.TemporaryDirectory() as tmp:
        records = make_samples(args.samples, args.seed)
        chars = statistics.mean(len(json.dumps(r)) for r in records)
        model_dir = (
            resolve_model(args.base_model)
            if args.base_model
            else str(
                build_llama(
                    Path(tmp) / "llama",
                    hidden_size=args.hidden_size,
                    num_layers=args.num_layers,
                    num_heads=args.num_heads,
                    num_kv_heads=args.num_heads,
                    intermediate_size=args.hidden_size * 8 // 3 // 64 * 64,
                    vocab_size=2000,
                    tokenizer_texts=[r["instruction"] + r["output"] for r in records[:50]],
                    model_vocab_size=args.vocab_size,
                    tie_word_embeddings=False,
                )
            )
        )
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())
        results = run_interleaved(model_dir, records, args)

    print(
        f"\nmodel: {args.base_model or 'Llama'} {n_params / 1e6:.1f}M params"
        + (
            ""
            if args.base_model
            else f" (hidden {args.hidden_size}, {args.num_layers} layers, vocab {args.vocab_size})"
        )
        + f", LoRA r=16 q/k/v/o; {args.samples} samples ({chars:,.0f} JSON bytes each on "
        f"average; published 71K: ~3,200), micro-batch {args.micro_batch_size}, cutoff_len {args.cutoff_len}, "
        f"threads {torch.get_num_threads()}"
    )
    base = results[0]
    for r in results:
        print(
            f"{r['label']:<28} {r['tok_s']:7.0f} non-padding tok/s wall, {r['tok_cpu_s']:7.0f} per CPU-second "
            f"({r['tokens']:,} real tokens, {r['computed_tokens']:,} computed, {r['seconds']:.1f} s)  "
            f"{r['tok_s'] / base['tok_s']:.2f}x"
        )
    k = min(4, len(base["losses"]))
    diffs = [abs(a - b) for r in results[1:] for a, b in zip(base["losses"][:k], r["losses"][:k], strict=True)]
    for r in results:
        print(f"first-step losses {r['label']:<28} " + " ".join(f"{x:.4f}" for x in r["losses"][:k]))
    print(
        f"max |difference| to the published recipe: {max(diffs):.2e} ({'agree' if max(diffs) < 1e-2 else 'DISAGREE'})"
    )
    best = results[-1]["tok_s"] / base["tok_s"]
    print(f"speed-up of the new path (packing + trained logits) over the published recipe: {best:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "ratio": best, "max_loss_diff": max(diffs)}, indent=2))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
