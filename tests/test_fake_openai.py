"""The shared fake OpenAI-compatible server (testkit.fake_openai) through the real openai client:
every kind of reply and fault, and what it records."""

from __future__ import annotations

import openai
import pytest

from testkit.fake_openai import FakeServer, Reply, Request, completion, scripted


def _client(server: FakeServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0, timeout=5)


def _ask(client: openai.OpenAI, text: str, **kw):
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}], **kw)


def test_text_stream_and_full_body_replies_and_what_is_recorded():
    def respond(request: Request) -> Reply:
        if "tool" in request.prompt:
            call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            return Reply(body=completion(request, message={"role": "assistant", "content": None, "tool_calls": [call]}))
        return scripted(lambda prompt: f"echo {prompt}\nObservation: x", chunk_chars=3)(request)

    with FakeServer(respond) as server:
        client = _client(server)
        assert _ask(client, "a", stop=["\nObservation:"]).choices[0].message.content == "echo a"
        chunks = [c.choices[0].delta.content for c in _ask(client, "a", stream=True) if c.choices]
        assert len(chunks) > 3 and "".join(chunks) == "echo a\nObservation: x"
        reply = _ask(client, "use a tool")
        assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.tool_calls[0].id == "c1"
        text = client.completions.create(model="m", prompt="b").choices[0].text
        assert text == "echo b\nObservation: x"
        assert [m.id for m in client.models.list()] == ["m"]
    assert server.attempts == {"a": 2, "use a tool": 1, "b": 1} and len(server.requests) == 4
    assert server.requests[1]["stream"] is True and server.auth == ["Bearer k"] * 4


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.error(429, "slow down", retry_after=0), openai.RateLimitError),
        (Reply.error(500, "boom"), openai.InternalServerError),
        (Reply(raw=b'{"choices": [ {"message": '), ValueError),  # invalid JSON
        (Reply(drop=True), openai.APIConnectionError),
    ],
)
def test_faults_reach_the_client(reply, error):
    with FakeServer(lambda request: reply) as server:
        with pytest.raises(error):
            _ask(_client(server), "x")
    assert server.attempts["x"] == 1


def test_retry_after_header_and_per_key_attempts():
    def respond(request: Request) -> Reply:
        return Reply.error(429, "later", retry_after=0) if request.attempt == 1 else Reply(text="ok")

    with FakeServer(respond) as server:
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=2, timeout=5)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "q"}])
        assert raw.parse().choices[0].message.content == "ok" and raw.retries_taken == 1
    assert server.attempts["q"] == 2
