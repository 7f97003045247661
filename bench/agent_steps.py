"""No re-prefill between agent steps: a 3-step agent turn on a real local model, with and without the prefix KV cache.

Each step's prompt is built by ``g4t.agent.Agent.build_prompt`` (the published agent prompt in the training
layout, eight tools listed, an uploaded image in the history, the ``gpt4tools`` template); the model's reply
is parsed, and a scripted tool observation (a new image name) becomes the next step of the scratchpad, as in
``Conversation.run``. The same turn runs, greedy, in one process, through four ``HFBackend`` settings:

* ``generate``: ``model.generate``, every step prefilled in full (``prefix_cache=0, prompt_lookup=0``);
* ``generate+reuse``: ``model.generate`` from the KV cache of the previous step (``prompt_lookup=0``);
* ``lookup``: prompt-lookup decoding (``g4t.llm.prompt_lookup``), every step prefilled in full;
* ``lookup+reuse``: both (the default ``HFBackend``).

Measured: the prompt positions the model computes at each step (counted by a hook on the input embeddings:
the first forward pass of a step is its prefill) and the wall time of each step and of the turn (the
minimum over ``--repeats`` runs of each, interleaved); the replies must be identical in all four. Written to
``--out`` and printed: ``step2_prefill_fraction`` and ``step2_time_fraction`` / ``turn_time_ratio`` compare
the default with reuse against the same decoder without it (``lookup+reuse`` / ``lookup``); the same
ratios for ``model.generate`` and against plain ``generate`` are kept beside them.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 nice -n 5 python bench/agent_steps.py --threads 2
    # with the model bench/real_model.py trained (replies end at "Observation:", as in a served model); the
    # figures in bench/results/agent_steps.json came from its earlier LoRA recipe: --lora_model <its adapter>
    OMP_NUM_THREADS=2 python bench/agent_steps.py --threads 2 --base_model output/real_model/model --max_new_tokens 64 --repeats 4
"""

from __future__ import annotations

import argparse
import os
import time

TOOLS = ("ImageCaptioning_cpu,Text2Box_cpu,Segmenting_cpu,Image2Canny_cpu,CannyText2Image_cpu,Text2Image_cpu,"
         "VisualQuestionAnswering_cpu,InstructPix2Pix_cpu")  # fmt: skip
REQUEST = "Detect the dog in the image, then make the picture look like a painting and describe the result."
# What the scripted tools "return" at each step, and the call used when the model's reply names no tool.
OBSERVATIONS = ("image/5e6f7a8b.png", "image/9c0d1e2f.png", "a painting of a brown dog lying on a red sofa")
FALLBACK_CALLS = (("Detect the Give Object", "image/1a2b3c4d.png, dog"),
                  ("Instruct Image Using Text", "image/5e6f7a8b.png, make it look like a painting"),
                  ("Get Photo Description", "image/9c0d1e2f.png"))  # fmt: skip


def run_turn(agent, counter: list[int], steps: int = 3) -> list[dict]:
    """One agent turn of ``steps`` model calls with scripted observations; per step: prompt tokens, prefill
    positions computed, seconds, reply."""
    from g4t.agent import STOP, Memory, parse_reply
    from g4t.prompts import Step

    memory = Memory()
    memory.add_image("image/1a2b3c4d.png", "a brown dog lying on a red sofa")
    done: list[Step] = []
    records = []
    for k in range(steps):
        prompt = agent.build_prompt(memory, REQUEST, done)
        counter.clear()
        t0 = time.perf_counter()
        reply = agent.backend.generate([prompt], stop=STOP, gen=agent.gen)[0]
        seconds = time.perf_counter() - t0
        tokens = len(agent.backend.tokenizer(prompt)["input_ids"])
        records.append({"prompt_tokens": tokens, "prefill_tokens": counter[0], "seconds": round(seconds, 3),
                        "reply": reply})  # fmt: skip
        parsed = parse_reply(reply)
        tool, tool_input = (parsed.tool, parsed.tool_input) if parsed.kind == "tool" else FALLBACK_CALLS[k]
        done.append(Step(tool, tool_input, OBSERVATIONS[k], log=reply))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base_model", default="smollm2", help="Hub id, folder, .gguf file or smollm2 (packaged)")
    parser.add_argument(
        "--lora_model",
        default=None,
        help="LoRA merged into the model, e.g. output/real_model/adapter from bench/real_model.py "
        "--full_finetune False (or pass its full model as --base_model): a model that learned the protocol "
        "ends each step at 'Observation:' as a served one does",
    )
    parser.add_argument("--max_new_tokens", type=int, default=40, help="about one tool-call reply")
    parser.add_argument("--repeats", type=int, default=4, help="turns per setting (the minimum time is kept)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--out", default="bench/results/agent_steps.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from g4t.agent import Agent
    from g4t.data.io import atomic_write_json
    from g4t.llm.base import GenerationConfig
    from g4t.llm.hf import HFBackend, load_model
    from g4t.prompts import load_template
    from g4t.tools.registry import Toolbox

    model, tokenizer = load_model(args.base_model, args.lora_model, dtype=args.dtype, merge_lora=bool(args.lora_model))
    counter: list[int] = []  # positions per forward pass since the step began
    model.get_input_embeddings().register_forward_pre_hook(lambda module, inputs: counter.append(inputs[0].shape[-1]))
    toolbox = Toolbox(TOOLS)  # tool descriptions only: the models load on first use, which never comes
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    template = load_template("gpt4tools")
    HFBackend(model, tokenizer, prefix_cache=0).generate(["Hi."], stop=["\nObservation:"], gen=gen)  # warm-up

    settings = {  # name: (prefix-cache entries, prompt-lookup draft tokens)
        "generate": (0, 0),
        "generate+reuse": (4, 0),
        "lookup": (0, 10),
        "lookup+reuse": (4, 10),
    }
    runs: dict[str, list[list[dict]]] = {name: [] for name in settings}
    for r in range(args.repeats):
        for name, (entries, lookup) in settings.items():
            backend = HFBackend(model, tokenizer, prefix_cache=entries, prompt_lookup=lookup)
            turn = run_turn(Agent(backend, toolbox, template, gen=gen), counter)
            runs[name].append(turn)
            print(f"run {r + 1}, {name}: " + ", ".join(
                f"step {k + 1} {s['prefill_tokens']}/{s['prompt_tokens']} tokens {s['seconds']:.2f} s"
                for k, s in enumerate(turn)), flush=True)  # fmt: skip

    def best(name: str, k: int) -> float:
        return min(turn[k]["seconds"] for turn in runs[name])

    def turn_time(name: str) -> float:
        return min(sum(s["seconds"] for s in turn) for turn in runs[name])

    def ratios(with_: str, without: str) -> dict:
        a, b = runs[with_][0], runs[without][0]
        return {
            "step2_prefill_fraction": round(a[1]["prefill_tokens"] / b[1]["prefill_tokens"], 4),
            "step2_time_fraction": round(best(with_, 1) / best(without, 1), 4),
            "turn_time_ratio": round(turn_time(with_) / turn_time(without), 4),
        }

    replies = {name: [[s["reply"] for s in turn] for turn in turns] for name, turns in runs.items()}
    outputs_equal = all(t == replies["generate"][0] for turns in replies.values() for t in turns)
    result = {
        "settings": {
            "base_model": args.base_model,
            "lora_model": args.lora_model,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "threads": args.threads,
            "max_new_tokens": args.max_new_tokens,
            "repeats": args.repeats,
            "layout": "training",
            "tools": len(toolbox.descriptions()),
        },  # fmt: skip
        **ratios("lookup+reuse", "lookup"),
        "outputs_equal": outputs_equal,
        "generate": ratios("generate+reuse", "generate"),
        "vs_plain_generate": ratios("lookup+reuse", "generate"),
        "steps": [
            {
                "step": k + 1,
                "prompt_tokens": runs["generate"][0][k]["prompt_tokens"],
                **{f"prefill_tokens[{name}]": runs[name][0][k]["prefill_tokens"] for name in settings},
                **{f"seconds[{name}]": best(name, k) for name in settings},
            }
            for k in range(len(runs["generate"][0]))
        ],  # fmt: skip
        "turn_seconds": {name: round(turn_time(name), 3) for name in settings},
        "replies": replies["lookup+reuse"][0],
    }
    atomic_write_json(args.out, result, indent=1)
    g, v = result["generate"], result["vs_plain_generate"]
    print(f"step 2 with reuse computes {result['step2_prefill_fraction']:.1%} of its prompt tokens and takes "
          f"{result['step2_time_fraction']:.1%} of the time without reuse (prompt lookup in both; with model.generate "
          f"{g['step2_time_fraction']:.1%}; against plain generate {v['step2_time_fraction']:.1%}); whole turn "
          f"{result['turn_time_ratio']:.2f}x ({v['turn_time_ratio']:.2f}x against plain generate); outputs equal: "
          f"{outputs_equal}")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
