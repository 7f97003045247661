"""A local OpenAI-compatible server for tests: /v1/chat/completions and /v1/completions, plain JSON
or server-sent events (``"stream": true``), answering with a function of the prompt."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class FakeServer:
    """``url`` (ends in /v1), the request bodies received, and how many streams the client closed early."""

    url: str
    received: list[dict] = field(default_factory=list)
    streams_cut: int = 0  # streams whose client went away before the last chunk


@contextmanager
def serve(
    reply: Callable[[str], str], chunk_chars: int = 4, delay: float = 0.0, fail_first: int = 0
) -> Iterator[FakeServer]:
    """Serve ``reply(prompt)``; a stream sends ``chunk_chars`` characters per chunk, ``delay`` s apart.

    The first ``fail_first`` requests get HTTP 503 (to exercise retries).
    """
    state = FakeServer("")
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state.received.append(body)
                failing = len(state.received) <= fail_first
            if failing:
                return self._send(503, {"error": {"message": "busy, try again"}})
            chat = self.path.endswith("/chat/completions")
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            text = reply(prompt)
            for s in body.get("stop") or []:
                text = text.split(s)[0]
            if body.get("stream"):
                return self._stream(body, text, chat)
            choice = {"index": 0, "finish_reason": "stop"}
            choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            kind = "chat.completion" if chat else "text_completion"
            self._send(
                200,
                {"id": "x", "object": kind, "created": 0, "model": body["model"], "choices": [choice], "usage": usage},
            )

        def _send(self, code: int, obj: dict) -> None:
            payload = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, body: dict, text: str, chat: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            kind = "chat.completion.chunk" if chat else "text_completion"
            try:
                for start in range(0, len(text), chunk_chars):
                    time.sleep(delay)
                    piece = text[start : start + chunk_chars]
                    choice = {"index": 0, "finish_reason": None}
                    choice |= {"delta": {"content": piece}} if chat else {"text": piece}
                    chunk = {"id": "x", "object": kind, "created": 0, "model": body["model"], "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                with lock:
                    state.streams_cut += 1
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
