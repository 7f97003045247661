"""Training step cost: ``--packing`` vs ``--share_prefix`` on a real model, on the same micro-batches.

Two datasets from the offline teacher over the MagicBrush captions in ``data/`` (``--complement``,
every step of each chain a record, as ``bench/real_model.py`` builds them):

* published: every conversation draws its own tool list and image name (only the records cut from one
  conversation, and the prompt's opening sentences, are shared);
* sessions: ``generate_annotations.py --session_prompts`` (one image, one tool list, several requests).

For each, ``--samples`` records are ordered by ``PrefixGroupedSampler`` (what ``lora_finetune.py
--share_prefix`` trains on) and cut into micro-batches; every micro-batch runs forward + backward with
ordinary packing and with shared prefixes, alternating, on one LoRA model (SmolLM2-135M-Instruct, the
``bench/real_model.py`` recipe: r16 on every linear layer of the top 10 layers, logits only at trained
positions). Reported: sample tokens vs computed tokens, seconds, sample tokens per second, the ratio,
and the largest loss difference (the two paths compute the same loss).

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python bench/shared_prefix.py   # ~8 minutes on 2 cores

Results: ``bench/results/shared_prefix.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_records(captions: list[dict], sessions: bool, seed: int, work: Path) -> list[dict]:
    """Training records of the offline teacher (tool calls, relays, chit-chat) for ``captions``."""
    from g4t.data.annotate import AnnotateConfig, run
    from g4t.data.offline_teacher import extra_tools, generator_tools, write_negatives, write_replies

    replies, negatives = work / "replies.jsonl", work / "negatives.json"
    write_replies(captions, replies, tools=generator_tools(), seed=seed)
    write_negatives(captions, negatives, seed=seed)
    out = work / ("sessions.json" if sessions else "published.json")
    cfg = AnnotateConfig(
        input_path=str(replies),
        output_path=str(out),
        complement=True,
        insert_alpaca=True,
        alpaca_path=str(negatives),
        alpaca_ratio=0.6,
        tools=extra_tools(),
        session_prompts=sessions,
        seed=seed,
    )
    run(cfg)
    return json.loads(out.read_text())


def measure(model, tokenizer, samples: list[dict], micro_batch: int) -> dict:
    """Forward + backward of each micro-batch, packed and shared, alternating; times and losses."""

    from g4t.train.packing import make_collator
    from g4t.train.shared_prefix import PrefixGroupedSampler

    order = list(PrefixGroupedSampler(samples, seed=0))
    collate = {
        "packing": make_collator(tokenizer, packing=True, loss_logits_only=True),
        "share_prefix": make_collator(tokenizer, packing=True, loss_logits_only=True, share_prefix=True),
    }
    out = {k: {"seconds": 0.0, "computed_tokens": 0, "losses": []} for k in collate}
    for start in range(0, len(order), micro_batch):
        batch = [samples[i] for i in order[start : start + micro_batch]]
        for name, collator in collate.items():
            inputs = collator(batch)
            t = time.perf_counter()
            loss = model(**inputs).loss
            loss.backward()
            out[name]["seconds"] += time.perf_counter() - t
            out[name]["computed_tokens"] += inputs["input_ids"].shape[1]
            out[name]["losses"].append(loss.item())
            model.zero_grad(set_to_none=True)
        print(f"  micro-batch {start // micro_batch + 1}: loss {out['packing']['losses'][-1]:.5f}", flush=True)
    tokens = sum(len(s["input_ids"]) for s in samples)
    for v in out.values():
        v["sample_tokens"] = tokens
        v["sample_tok_per_s"] = round(tokens / v["seconds"], 1)
        v["seconds"] = round(v["seconds"], 2)
    diff = max(abs(a - b) for a, b in zip(out["packing"]["losses"], out["share_prefix"]["losses"], strict=True))
    return {
        **out,
        "speedup": round(out["packing"]["seconds"] / out["share_prefix"]["seconds"], 2),
        "max_loss_diff": diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base_model", default="smollm2", help="Hub id, folder, .gguf file or smollm2")
    parser.add_argument("--samples", type=int, default=32, help="records per dataset")
    parser.add_argument("--micro_batch_size", type=int, default=16)
    parser.add_argument("--lora_layers", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(ROOT / "bench/results/shared_prefix.json"))
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from g4t.data.build import pick_sessions
    from g4t.llm.sources import resolve_model
    from g4t.prompts import load_template
    from g4t.train.packing import register_varlen_attention
    from g4t.train.tokenize import tokenize_records
    from g4t.train.trainer import linear_targets

    torch.set_num_threads(args.threads)
    source = resolve_model(args.base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, attn_implementation=register_varlen_attention())
    model.config.use_cache = False
    n = model.config.num_hidden_layers
    targets = linear_targets(model)
    torch.manual_seed(args.seed)
    layers = list(range(n - args.lora_layers, n))
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets, layers_to_transform=layers)
    model = get_peft_model(model, lora).train()

    captions = json.loads((ROOT / "data/magicbrush_dev_captions.json").read_text())
    result: dict = {"base_model": args.base_model, "threads": args.threads, "micro_batch_size": args.micro_batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("published", "sessions"):
            records = make_records(captions, name == "sessions", args.seed, Path(tmp))
            rng = random.Random(args.seed)
            if name == "sessions":  # whole sessions, as bench/real_model.py takes them
                picked = pick_sessions(records, args.samples, rng)
            else:  # drawn at random, as the published recipe trains
                picked = rng.sample(records, args.samples)
            samples, _ = tokenize_records(tokenizer, load_template("gpt4tools"), picked, 1024)
            print(f"{name}: {len(samples)} samples", flush=True)
            result[name] = measure(model, tokenizer, samples, args.micro_batch_size)
    lines = [
        f"# bench/shared_prefix.py ({args.base_model}, {args.threads} threads, micro-batch {args.micro_batch_size})"
    ]
    for name in ("published", "sessions"):
        r = result[name]
        for path in ("packing", "share_prefix"):
            v = r[path]
            lines.append(
                f"{name:9s} {path:12s} {v['sample_tokens']:>7,} sample tokens, {v['computed_tokens']:>7,} computed, "
                f"{v['seconds']:7.1f} s, {v['sample_tok_per_s']:7.1f} sample tok/s"
            )
        lines.append(f"{name:9s} speed-up {r['speedup']}x, max |loss difference| {r['max_loss_diff']:.2e}")
    print("\n".join(lines))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    sys.exit(0 if all(result[k]["max_loss_diff"] < 1e-3 for k in ("published", "sessions")) else 1)


if __name__ == "__main__":
    main()
