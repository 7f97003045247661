"""A local OpenAI-compatible teacher for tests, benchmarks and dry runs (127.0.0.1 only).

``TeacherServer`` answers ``POST /v1/chat/completions`` with a deterministic reply in the published
teacher style (one ``N. instruction, [tool, example.jpg, args]`` line per tool of the prompt), after
a fixed latency. Faults can be scripted per caption: HTTP 429/500, slow answers (longer than the
client's timeout) and malformed bodies, for the first ``n`` attempts or forever.

    with TeacherServer(latency=0.2) as server:
        url = server.base_url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["TeacherServer", "fake_reply"]

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


class TeacherServer:
    """Threaded local chat-completions server.

    Args:
        latency: seconds before each answer (also before error answers).
        faults: ``caption -> (kind, times)``; kind in ``429``, ``500``, ``slow``, ``malformed``;
            ``times`` = attempts that fail (-1: always). Called on every request.
        slow_seconds: how long a ``slow`` answer sleeps.
        reply: prompt -> reply text (default ``fake_reply``).
    """

    def __init__(
        self,
        latency: float = 0.0,
        faults: Callable[[str], tuple[str, int] | None] | None = None,
        slow_seconds: float = 3.0,
        reply: Callable[[str], str] = fake_reply,
    ) -> None:
        self.latency = latency
        self.faults = faults or (lambda caption: None)
        self.slow_seconds = slow_seconds
        self.reply = reply
        self.attempts: Counter = Counter()  # caption -> requests seen
        self.served: Counter = Counter()  # caption -> successful answers
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> TeacherServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, code: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                prompt = "".join(m.get("content", "") for m in payload.get("messages", []))
                m = _CAPTION.search(prompt)
                caption = m.group(1) if m else prompt[:80]
                with server._lock:
                    server.attempts[caption] += 1
                    attempt = server.attempts[caption]
                time.sleep(server.latency)
                fault = server.faults(caption)
                if fault and (fault[1] < 0 or attempt <= fault[1]):
                    kind = fault[0]
                    if kind == "429":
                        return self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"})
                    if kind == "500":
                        return self._send(500, b'{"error": {"message": "server error"}}')
                    if kind == "malformed":
                        return self._send(200, b'{"id": "x", "choices": [{"message": ')
                    if kind == "slow":
                        time.sleep(server.slow_seconds)
                text = server.reply(prompt)
                body = {
                    "id": f"chatcmpl-{attempt}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": payload.get("model", "teacher"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": len(prompt) // 4,
                        "completion_tokens": len(text) // 4,
                        "total_tokens": len(prompt) // 4 + len(text) // 4,
                    },
                }
                with server._lock:
                    server.served[caption] += 1
                self._send(200, json.dumps(body).encode())

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve_forever() -> None:
    """``python -m testkit.teacher_server --latency 0.2``: serve until killed; prints the base URL."""
    import argparse

    ap = argparse.ArgumentParser(description="Local fake teacher (OpenAI-compatible chat completions).")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds before each answer")
    args = ap.parse_args()
    server = TeacherServer(latency=args.latency).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    _serve_forever()
