"""The fake teacher of the tests, benchmarks and dry runs: a responder for ``testkit.fake_openai.FakeServer``.

``teacher()`` answers a teacher prompt with a deterministic reply in the published teacher style (one
``N. instruction, [tool, example.jpg, args]`` line per tool of the prompt), after a fixed latency.
Faults can be scripted per caption: HTTP 429/500, slow answers (longer than the client's timeout) and
malformed bodies, for the first ``n`` attempts or forever.

    with teacher_server(latency=0.2) as server:
        url = server.base_url   # http://127.0.0.1:PORT/v1

``python -m testkit.teacher_server --latency 0.2`` serves one until killed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from testkit.fake_openai import FakeServer, Reply, Request

__all__ = ["caption", "fake_reply", "teacher", "teacher_server"]

_CAPTION = re.compile(r'Image caption: "(.*?)"\. \n', re.S)
_TOOL_LINE = re.compile(r"^(\d+)\. ([^:\n]+): ", re.M)


def fake_reply(prompt: str) -> str:
    """A teacher reply for a teacher prompt: one well-formed line per listed tool (published style)."""
    m = _CAPTION.search(prompt)
    caption = m.group(1) if m else "a scene"
    subject = " ".join(caption.split()[:4]).rstrip(".,") or "the scene"
    lines = []
    for number, tool in _TOOL_LINE.findall(prompt.split("Tools:\n", 1)[-1]):
        low = tool.lower()
        if "generate image from" in low:
            call = f"[{tool}, a painting of {subject}]"
        elif "replace" in low or "edit the given" in low:
            call = f"[{tool}, example.jpg, {subject}, something new]"
        elif "crop" in low:
            call = f"[{tool}, example.jpg, [10, 20, 110, 220]]"
        elif any(
            k in low
            for k in ("condition", "instruct", "edit image", "remove", "question", "detect the give", "given object")
        ):
            call = f"[{tool}, example.jpg, {subject}]"
        else:
            call = f"[{tool}, example.jpg]"
        lines.append(f'{number}. "Use {tool.lower()} for {subject}", {call}')
    return "\n".join(lines)


def caption(request: Request) -> str:
    """The attempt key of a teacher request: the caption its prompt quotes (else the prompt's start)."""
    prompt = "".join(m.get("content") or "" for m in request.body.get("messages", []))
    m = _CAPTION.search(prompt)
    return m.group(1) if m else prompt[:80]


def teacher(
    latency: float = 0.0,
    faults: Callable[[str], tuple[str, int] | None] | None = None,
    slow_seconds: float = 3.0,
    reply: Callable[[str], str] = fake_reply,
) -> Callable[[Request], Reply]:
    """A ``FakeServer`` responder answering a teacher prompt with ``reply(prompt)`` after ``latency`` s.

    ``faults``: ``caption -> (kind, times)``; kind in ``429`` (Retry-After 0), ``500``, ``slow`` (sleeps
    ``slow_seconds`` more, then answers), ``malformed`` (truncated JSON); ``times`` = attempts that fail
    (-1: always). Called on every request.
    """

    def respond(request: Request) -> Reply:
        prompt = "".join(m.get("content") or "" for m in request.body.get("messages", []))
        fault = faults(request.key) if faults else None
        if fault and (fault[1] < 0 or request.attempt <= fault[1]):
            kind = fault[0]
            if kind == "429":
                return Reply.error(429, "rate limited", retry_after=0, delay=latency)
            if kind == "500":
                return Reply.error(500, "server error", delay=latency)
            if kind == "malformed":
                return Reply(raw=b'{"id": "x", "choices": [{"message": ', delay=latency)
            if kind == "slow":
                return Reply(text=reply(prompt), delay=latency + slow_seconds)
        return Reply(text=reply(prompt), delay=latency)

    return respond


def teacher_server(**kwargs) -> FakeServer:
    """A (not yet started) ``FakeServer`` running ``teacher(**kwargs)``, attempts counted per caption."""
    return FakeServer(teacher(**kwargs), key=caption)


def _serve_forever() -> None:
    """``python -m testkit.teacher_server --latency 0.2``: serve until killed; prints the base URL."""
    import argparse

    ap = argparse.ArgumentParser(description="Local fake teacher (OpenAI-compatible chat completions).")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds before each answer")
    args = ap.parse_args()
    server = teacher_server(latency=args.latency).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    _serve_forever()
