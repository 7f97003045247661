"""Throughput of batch inference: published approach (one ``generate`` per sample) vs the batched path.

Builds 100+ prompts in the published val format (training prompt with 2-5 tool descriptions from the
registry, an image line and a request, wrapped in the ``gpt4tools`` template) and a ~30M-parameter
random-weight Llama (``g4t.tiny.build_llama``), then times, in one run and with the same threads and
decoding settings (greedy, ``max_new_tokens``):

* published: ``model.generate`` on one prompt at a time, in annotation order, as the published
  ``inference.py`` does (greedy, ``max_new_tokens``, no stopping criteria besides EOS; the completion
  is then cut at the stop string);
* batched: ``g4t.llm.hf.HFBackend`` (longest first, shared-prefix KV reuse, per-prompt prefill into a
  slot cache, batched decoding, stop strings checked in Python, ``--batch_size`` rows per batch).

It prints samples/s of both, the ratio, and the agreement rate of the completions (a random model
never emits EOS or the stop string, so every sample decodes ``max_new_tokens`` tokens both ways).
``--max_new_tokens`` defaults to 512, the published default: a random model never stops, so that is
what the published script spends per sample. ``--threads`` applies to both paths.

    OMP_NUM_THREADS=2 python bench/inference_throughput.py --num_samples 104 --batch_size 52 --max_new_tokens 512
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_samples", type=int, default=104)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=512, help="published default: 512")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--model_dir", default=None, help="reuse a model built earlier (default: a temp folder)")
    parser.add_argument(
        "--base_model",
        default=None,
        help="a real model instead of the random one: Hub id, folder, .gguf file or smollm2 (packaged SmolLM2)",
    )
    parser.add_argument("--dtype", default="fp32", help="weights dtype of both paths (auto, bf16, fp32)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from g4t.llm.base import GenerationConfig
    from g4t.llm.hf import HFBackend, load_model
    from g4t.tiny import build_llama

    if args.base_model:
        source = args.base_model
    else:
        model_dir = Path(args.model_dir or tempfile.mkdtemp(prefix="g4t_bench_"))
        if not (model_dir / "config.json").is_file():
            build_llama(model_dir, hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=4)
        source = str(model_dir)
    model, tokenizer = load_model(source, dtype=args.dtype)
    params = sum(p.numel() for p in model.parameters())
    prompts = build_prompts(args.num_samples)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    stop = ["\nObservation:"]
    print(
        f"model {params / 1e6:.1f}M params, {args.threads} thread(s); {len(prompts)} prompts of "
        f"{min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}); greedy, "
        f"max_new_tokens={args.max_new_tokens}, batch_size={args.batch_size}",
        flush=True,
    )

    # Published approach: one model.generate call per sample (inference.py of GPT4Tools), same settings.
    from g4t.llm.base import truncate_at_stop

    def published_one(prompt: str) -> str:
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=gen.max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        return truncate_at_stop(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True), stop)

    t0 = time.perf_counter()
    from tqdm import tqdm

    published = [published_one(p) for p in tqdm(prompts, desc="published, one generate per sample")]
    t_pub = time.perf_counter() - t0
    print(f"published (one generate per sample): {len(prompts) / t_pub:.3f} samples/s ({t_pub:.1f}s)", flush=True)

    batched_backend = HFBackend(model, tokenizer, batch_size=args.batch_size)
    t0 = time.perf_counter()
    batched = batched_backend.generate(prompts, stop=stop, gen=gen)
    t_new = time.perf_counter() - t0
    print(f"batched (HFBackend, batch {args.batch_size}): {len(prompts) / t_new:.3f} samples/s ({t_new:.1f}s)")

    agree = sum(a == b for a, b in zip(published, batched, strict=True))
    print(f"speed-up: {t_pub / t_new:.2f}x")
    print(f"agreement: {agree}/{len(prompts)} = {100 * agree / len(prompts):.1f}% identical completions")
    for i, (a, b) in enumerate(zip(published, batched, strict=True)):
        if a != b:
            j = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"  sample {i}: first difference at character {j}: {a[j : j + 20]!r} vs {b[j : j + 20]!r}")


if __name__ == "__main__":
    main()
