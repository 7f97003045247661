"""Teacher throughput: the published sequential get_instruction loop vs g4t.data.collect at concurrency 16.

Both run in this process against the same local OpenAI-compatible server (127.0.0.1, its own
process, like a remote API) answering each request after a fixed latency (200 ms by default). Prints records/s of
each, the ratio and how many records each kept (the published loop dumps every 10th step and never
after the loop, so it loses its tail).

    OMP_NUM_THREADS=1 .venv/bin/python bench/teacher_throughput.py --n 64 --latency 0.2 --concurrency 16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from g4t.data.collect import CollectConfig, collect
from g4t.data.io import read_jsonl
from g4t.data.teacher import teacher_prompt
from g4t.settings import OpenAIConnection


class _ServerProcess:
    """``testkit.teacher_server`` in a subprocess (so it does not share this process's GIL)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    def __enter__(self) -> _ServerProcess:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "testkit.teacher_server", "--latency", str(self.latency)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"teacher server did not start: {self.base_url!r}")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def published_loop(base_url: str, caption_path: Path, out_path: Path) -> float:
    """The published scripts/get_instruction.py loop, on the current openai client (sequential)."""
    import openai

    client = openai.OpenAI(api_key="EMPTY", base_url=base_url, max_retries=0)
    annotations = json.loads(caption_path.read_text())
    instructions = []
    t0 = time.perf_counter()
    for idx, annot in enumerate(annotations):
        caption = annot["caption"]
        messages = [{"role": "system", "content": teacher_prompt(caption)}]
        while True:  # published: retry forever on any exception
            try:
                r = client.chat.completions.create(model="gpt-3.5-turbo", messages=messages, temperature=0.7)
                break
            except Exception as err:
                print(err)
        instructions.append(
            {"file_name": annot["file_name"], "caption": caption, "instructions": r.choices[0].message.content}
        )
        if idx % 10 == 0:
            out_path.write_text(json.dumps(instructions))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="captions")
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight for the new path")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="teacher_bench_"))
    caps = [
        {"file_name": f"{i:012d}.jpg", "caption": f"Image {i}: a man rides a horse [10, 20, 200, 300]."}
        for i in range(args.n)
    ]
    cap_path = tmp / "captions.json"
    cap_path.write_text(json.dumps(caps))
    import openai  # noqa: F401  (import cost outside the timed regions)

    with _ServerProcess(args.latency) as server:
        base_seconds = published_loop(server.base_url, cap_path, tmp / "published.json")
        base_kept = len(json.loads((tmp / "published.json").read_text()))
        cfg = CollectConfig(
            caption_path=str(cap_path),
            instruction_path=str(tmp / "new.jsonl"),
            openai=OpenAIConnection(
                openai_base_url=server.base_url,
                openai_model="gpt-3.5-turbo",
                chat_role="system",
                max_concurrency=args.concurrency,
            ),
            progress=False,
        )
        summary = collect(cfg)
        new_kept = len(read_jsonl(tmp / "new.jsonl"))
        new_seconds = summary["seconds"]
        ids = [r["id"] for r in read_jsonl(tmp / "new.jsonl")]
        assert len(ids) == len(set(ids)), "duplicate records"
        # Same replies both ways: the server answers deterministically from the prompt.
        pub = {r["file_name"]: r["instructions"] for r in json.loads((tmp / "published.json").read_text())}
        new = {r["file_name"]: r["instructions"] for r in read_jsonl(tmp / "new.jsonl")}
        agree = all(new[k] == v for k, v in pub.items())
    base_rate, new_rate = args.n / base_seconds, new_kept / new_seconds
    print(f"captions: {args.n}, server latency {args.latency * 1000:.0f} ms")
    print(
        f"published sequential: {base_seconds:7.2f} s  {base_rate:7.2f} records/s  kept {base_kept}/{args.n} (lost {args.n - base_kept})"
    )
    print(
        f"g4t concurrency {args.concurrency:<3}: {new_seconds:7.2f} s  {new_rate:7.2f} records/s  kept {new_kept}/{args.n} (lost {args.n - new_kept})"
    )
    print(f"ratio: {new_rate / base_rate:.1f}x   replies agree: {agree}")
    return 0 if new_kept == args.n and agree else 1


if __name__ == "__main__":
    sys.exit(main())
