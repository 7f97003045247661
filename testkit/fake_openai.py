"""The one local OpenAI-compatible server of the tests and benches (127.0.0.1 only), with fault injection.

``FakeServer(respond)`` answers ``POST /v1/chat/completions`` and ``POST /v1/completions`` (and
``GET /v1/models``) with whatever ``respond(request) -> Reply`` says: plain text, a full JSON body (e.g.
with ``tool_calls``), a stream of chunks (server-sent events, when the request asks ``"stream": true``),
or a fault -- an HTTP status (with ``Retry-After``), a delay, a malformed or truncated body, or a
dropped connection. It records every request body and header, counts attempts per key (``key(request)``,
by default the prompt) and the most requests in flight at once.

    with FakeServer(scripted(lambda prompt: "hi")) as server:
        url = server.base_url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeServer", "Reply", "Request", "completion", "scripted"]


@dataclass
class Request:
    """One request as the responder sees it: ``attempt`` counts requests with the same key (from 1),
    ``index`` counts every request the server received (from 1); header names are lower case."""

    path: str
    body: dict
    headers: dict[str, str]
    key: str = ""
    attempt: int = 0
    index: int = 0

    @property
    def chat(self) -> bool:
        """True for /chat/completions, False for /completions."""
        return self.path.endswith("/chat/completions")

    @property
    def prompt(self) -> str:
        """The completions ``prompt``, or the text of the last chat message ("" when it has none)."""
        if not self.chat:
            return str(self.body.get("prompt", ""))
        messages = self.body.get("messages") or [{}]
        content = messages[-1].get("content")
        return content if isinstance(content, str) else ""


@dataclass
class Reply:
    """What the server sends back. Exactly one of ``text`` (wrapped in a completion body, streamed when
    the request asks for a stream), ``body`` (a JSON object sent as is), ``raw`` (bytes sent as is:
    malformed or truncated JSON) or ``drop`` (close the connection without an answer).

    ``status``/``headers``: the HTTP status and extra headers (e.g. ``{"Retry-After": "0"}``).
    ``delay``: seconds to wait before answering. ``chunk_chars``/``chunk_delay``: the size of a streamed
    chunk and the wait before each. ``usage``: the token counts of a ``text`` body.
    """

    text: str | None = None
    body: dict | None = None
    raw: bytes | None = None
    drop: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_chars: int = 4
    chunk_delay: float = 0.0
    usage: dict | None = None

    @classmethod
    def error(cls, status: int, message: str, retry_after: float | None = None, delay: float = 0.0) -> Reply:
        """An OpenAI-style error body with ``status`` (and ``Retry-After`` when given)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(body={"error": {"message": message}}, status=status, headers=headers, delay=delay)


def completion(request: Request, text: str | None = None, message: dict | None = None, usage: dict | None = None):
    """A non-streamed completion body for ``request``: ``text`` as the answer, or (chat only) a full
    assistant ``message`` (e.g. with ``tool_calls``; the finish reason follows from it)."""
    finish = "tool_calls" if message and message.get("tool_calls") else "stop"
    if request.chat:
        msg = message if message is not None else {"role": "assistant", "content": text}
        choice, kind = {"index": 0, "finish_reason": finish, "message": msg}, "chat.completion"
    else:
        choice, kind = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}, "text_completion"
    if usage is None:
        p, c = max(1, len(request.prompt) // 4), max(1, len(text or "") // 4)
        usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    model = request.body.get("model", "m")
    return {
        "id": f"x{request.index}",
        "object": kind,
        "created": 0,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def scripted(reply: Callable[[str], str], chunk_chars: int = 4, delay: float = 0.0, fail_first: int = 0):
    """A responder answering ``reply(prompt)`` cut at the request's ``stop`` strings; a stream sends
    ``chunk_chars`` characters per chunk, ``delay`` s apart. The first ``fail_first`` requests get 503."""

    def respond(request: Request) -> Reply:
        if request.index <= fail_first:
            return Reply.error(503, "busy, try again")
        text = reply(request.prompt)
        for s in request.body.get("stop") or []:
            text = text.split(s)[0]
        return Reply(text=text, chunk_chars=chunk_chars, chunk_delay=delay)

    return respond


class FakeServer:
    """Threaded local OpenAI-compatible server driven by ``respond(request) -> Reply``.

    ``requests``/``headers``: every body and header set received, in order; ``attempts``: key -> requests;
    ``max_in_flight``: the most requests answered at once; ``streams_cut``: streams whose client went away
    before the last chunk. ``key(request)`` names what attempts are counted per (default: the prompt).
    """

    def __init__(self, respond: Callable[[Request], Reply], key: Callable[[Request], str] | None = None) -> None:
        self.respond = respond
        self.key = key or (lambda request: request.prompt)
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.streams_cut = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def auth(self) -> list[str]:
        """The ``Authorization`` header of every request ("" when absent)."""
        return [h.get("authorization", "") for h in self.headers]

    def _take(self, path: str, body: dict, headers: dict[str, str]) -> Request:
        request = Request(path, body, headers)
        request.key = self.key(request)
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.attempts[request.key] += 1
            request.attempt, request.index = self.attempts[request.key], len(self.requests)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return request

    def start(self) -> FakeServer:
        """Start serving on a free port (in a daemon thread); returns ``self``."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    data = {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}
                    return self._send(200, json.dumps(data).encode(), {})
                self._send(404, b'{"error": {"message": "not found"}}', {})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                request = server._take(
                    self.path,
                    json.loads(self.rfile.read(length) or b"{}"),
                    {k.lower(): v for k, v in self.headers.items()},
                )
                try:
                    self._answer(request, server.respond(request))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, request: Request, reply: Reply) -> None:
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                if reply.raw is not None:
                    return self._send(reply.status, reply.raw, reply.headers)
                if reply.body is not None:
                    return self._send(reply.status, json.dumps(reply.body).encode(), reply.headers)
                if request.body.get("stream"):
                    return self._stream(request, reply)
                body = completion(request, reply.text or "", usage=reply.usage)
                self._send(reply.status, json.dumps(body).encode(), reply.headers)

            def _stream(self, request: Request, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                kind = "chat.completion.chunk" if request.chat else "text_completion"
                text, step = reply.text or "", max(1, reply.chunk_chars)
                try:
                    for start in range(0, len(text), step):
                        time.sleep(reply.chunk_delay)
                        piece = text[start : start + step]
                        choice = {"index": 0, "finish_reason": None}
                        choice |= {"delta": {"content": piece}} if request.chat else {"text": piece}
                        model = request.body.get("model", "m")
                        chunk = {"id": "x", "object": kind, "created": 0, "model": model, "choices": [choice]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:
                        server.streams_cut += 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
