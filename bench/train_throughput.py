"""Training throughput: the published recipe (pad to the longest sample in each micro-batch) vs packing.

Both runs train the same ~30M-parameter Llama (random weights, built locally with ``g4t.tiny``) with
LoRA r=16 on q/k/v/o, on the same samples in the published GPT4Tools format, in the same order, for
the same number of steps, through the real ``g4t.train.trainer.main`` in one process. Reported:
non-padding tokens per second of each, their ratio, and the loss of the first steps (the two must
agree within numerical noise: the batches hold the same samples, only the padding differs).

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_throughput.py            # ~2-3 minutes on 2 cores
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


def run(label: str, model_dir: str, data: str, out: str, args, packing: bool) -> dict:
    from transformers import TrainerCallback

    from g4t.train.config import LoraTrainConfig
    from g4t.train.trainer import main

    marks: list[tuple[float, int]] = []
    losses: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            marks.append((time.perf_counter(), time.process_time(), state.num_input_tokens_seen))

        def on_train_begin(self, a, state, control, **kw):
            marks.append((time.perf_counter(), time.process_time(), state.num_input_tokens_seen))

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    cfg = LoraTrainConfig(
        base_model=model_dir,
        data_path=data,
        output_dir=out,
        batch_size=args.micro_batch_size,
        micro_batch_size=args.micro_batch_size,
        num_epochs=1,
        learning_rate=3e-4,
        cutoff_len=args.cutoff_len,
        val_set_size=0,
        lora_r=16,
        lora_alpha=16,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        warmup_steps=0,
        logging_steps=1,
        save_steps=10**6,
        packing=packing,
        seed=args.seed,
    )
    main(cfg, callbacks=[Timer()])
    # Skip the first step (allocator / kernel warm-up) in both runs.
    (t0, c0, n0), (t1, c1, n1) = marks[1], marks[-1]
    return {
        "label": label,
        "tokens": n1 - n0,
        "seconds": t1 - t0,
        "tok_s": (n1 - n0) / (t1 - t0),
        "tok_cpu_s": (n1 - n0) / (c1 - c0),
        "losses": losses,
    }


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
        data = Path(tmp) / "gpt4tools_bench.json"
        data.write_text(json.dumps(records))
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
        base = run("published (pad to longest)", model_dir, str(data), f"{tmp}/base", args, packing=False)
        new = run("packing (padding-free)", model_dir, str(data), f"{tmp}/packed", args, packing=True)

    print(
        f"\nmodel: Llama {n_params / 1e6:.1f}M params, LoRA r=16 q/k/v/o; {args.samples} samples, "
        f"micro-batch {args.micro_batch_size}, cutoff_len {args.cutoff_len}, threads {torch.get_num_threads()}"
    )
    for r in (base, new):
        print(
            f"{r['label']:<28} {r['tok_s']:8.0f} non-padding tok/s wall, {r['tok_cpu_s']:8.0f} per CPU-second  "
            f"({r['tokens']:,} tokens in {r['seconds']:.1f} s)"
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
