"""Which batch decoder for ``inference.py``: batched ``model.generate`` vs transformers' continuous batching, on
a real model with prompts in the published val layout.

Builds ``--num_samples`` prompts in the published val format (training prompt with 2-5 tool descriptions from
the registry, an image line and a request, wrapped in the ``gpt4tools`` template), loads ``--base_model``
(default: the packaged SmolLM2-135M-Instruct) and times, in one run, with the same threads and greedy settings:

* ``generate``: ``model.generate`` on left-padded batches, longest first, with ``stop_strings``;
* ``continuous``: ``model.generate_batch`` (transformers' continuous batching, paged cache with prefix block
  sharing). It has no stop strings: it decodes to EOS or ``--max_new_tokens`` and the text is cut afterwards.

Both decode greedily, so the completions cut at the stop string must be identical; the bench checks it.
Figures (seconds, samples/s, ratios to ``generate``, agreement) go to ``--out`` (JSON, written after every
path; a rerun with the same settings reuses the paths already measured unless ``--fresh``).

A third path, a hand-written slot-cache greedy decoder (per-prompt prefill without padding, matmul decode
attention, finished rows dropped), was measured here on SmolLM2 and was slower than ``generate``
(``fast_greedy`` in ``bench/results/inference_throughput.json``); it was deleted.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 nice -n 5 python bench/inference_throughput.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

from g4t.react import STOP

PATHS = ("generate", "continuous")


def build_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` prompts in the published val layout, each with 2-5 registry tools (capped by the registry size)."""
    from g4t.prompts import image_history, load_template, render_training_prompt
    from g4t.tools import TOOLS

    tools = [(t.name, t.description) for t in TOOLS.values()]
    rng = random.Random(seed)
    objects = ["dog", "red car", "two cats", "a man with an umbrella", "the sofa", "a bicycle"]
    requests = ["Detect the {o} in the image.", "What is in the picture?", "Generate the edge map of the image.",
                "Crop the {o} out of the image.", "Describe the image, please.", "Hi, who are you?"]  # fmt: skip
    template = load_template("gpt4tools")
    prompts = []
    for i in range(n):
        k = min(rng.randint(2, 5), len(tools))
        chosen = rng.sample(tools, k)
        obj = rng.choice(objects)
        history = image_history(f"image/{rng.getrandbits(32):08x}.png", f"a photo of {obj} number {i}")
        prompts.append(template.render(render_training_prompt(chosen, history, rng.choice(requests).format(o=obj))))
    return prompts


def _continuous(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """``model.generate_batch`` with a paged cache sized for these prompts (not from the free memory)."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    from g4t.llm.base import truncate_at_stop

    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    page = 256
    blocks = sum(math.ceil((len(ids) + max_new_tokens) / page) for ids in encoded) + 4
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cb = ContinuousBatchingConfig(page_size=page, num_blocks=blocks, max_batch_tokens=2048)
    out = model.generate_batch(encoded, generation_config=config, continuous_batching_config=cb, warmup=False)
    results = list(out.values())
    if len(results) != len(prompts) or any(r.error for r in results):
        raise RuntimeError(f"continuous batching returned {len(results)} of {len(prompts)} results or errors")
    return [truncate_at_stop(tokenizer.decode(r.generated_tokens, skip_special_tokens=True), STOP) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base_model", default="smollm2", help="Hub id, folder, .gguf file or smollm2 (packaged)")
    parser.add_argument("--num_samples", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=64, help="published default: 512")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--dtype", default="fp32", help="weights dtype of every path (auto, bf16, fp32)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    parser.add_argument("--out", default="bench/results/inference_throughput.json")
    parser.add_argument("--fresh", action="store_true", help="measure every path again")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"--paths: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")

    import torch

    torch.set_num_threads(args.threads)
    from g4t.data.io import atomic_write_json
    from g4t.llm.base import GenerationConfig
    from g4t.llm.hf import HFBackend, load_model

    model, tokenizer = load_model(args.base_model, dtype=args.dtype)
    prompts = build_prompts(args.num_samples)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    settings = {
        "base_model": args.base_model,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "device": "cpu",
        "threads": args.threads,
        "num_samples": len(prompts),
        "prompt_tokens": {"min": min(lengths), "max": max(lengths), "mean": round(sum(lengths) / len(lengths))},
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "stop": STOP,
    }
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() and not args.fresh else {}
    if record.get("settings") != settings:
        record = {"settings": settings, "paths": {}}
    print(f"{settings}", flush=True)

    backend = HFBackend(model, tokenizer, batch_size=args.batch_size)
    run = {
        "generate": lambda ps, g: backend._generate_hf(ps, STOP, g),
        "continuous": lambda ps, g: _continuous(model, tokenizer, ps, g.max_new_tokens),
    }
    for name in paths:
        if name in record["paths"]:
            print(f"{name}: reusing {record['paths'][name]['seconds']} s from {out}")
            continue
        with torch.inference_mode():
            run[name](["Hi.", "Hello there."], GenerationConfig(max_new_tokens=2))  # one-time setup, not timed
            t0, c0 = time.perf_counter(), time.process_time()
            texts = run[name](prompts, gen)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        record["paths"][name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                                 "samples_per_s": round(len(prompts) / seconds, 4), "outputs": texts}  # fmt: skip
        print(f"{name}: {len(prompts) / seconds:.3f} samples/s ({seconds:.1f} s wall, {cpu:.1f} s CPU)", flush=True)
        atomic_write_json(out, record, indent=1)

    measured = record["paths"]
    if "generate" in measured:
        base = measured["generate"]
        summary = {}
        for name, r in measured.items():
            agree = sum(a == b for a, b in zip(r["outputs"], base["outputs"], strict=True))
            summary[name] = {"speedup_vs_generate": round(base["seconds"] / r["seconds"], 2),
                             "cpu_speedup_vs_generate": round(base["cpu_seconds"] / r["cpu_seconds"], 2),
                             "identical_to_generate": f"{agree}/{len(prompts)}"}  # fmt: skip
            print(f"{name}: {summary[name]['speedup_vs_generate']:.2f}x generate (wall), "
                  f"{summary[name]['cpu_speedup_vs_generate']:.2f}x (CPU time), "
                  f"{agree}/{len(prompts)} completions identical")  # fmt: skip
        record["summary"] = summary
        atomic_write_json(out, record, indent=1)


if __name__ == "__main__":
    main()
