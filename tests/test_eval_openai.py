"""OpenAIBackend and inference_chatgpt.py against a fault-injecting OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest

from g4t.evaluation.io import load_predictions
from g4t.inference import THOUGHT_PREFIX, run
from g4t.inference_api import ApiInferenceConfig
from g4t.llm.base import LLMError
from g4t.llm.openai_backend import OpenAIBackend
from g4t.settings import OpenAIConnection
from testkit.fake_openai import FakeServer, Reply, Request

REPLY = "Yes\nAction: Edge Detection On Image\nAction Input: {tag}\nObservation: hallucinated result"


class MarkerFaults:
    """A ``FakeServer`` responder whose faults are chosen by markers in the prompt (attempts counted per
    ``<tag>``). ``#429``: first attempt 429 (Retry-After 0). ``#500``: first two attempts 500. ``#slow``:
    first attempt sleeps past the client timeout. ``#bad``: first attempt invalid JSON, second an empty
    ``choices``. ``#dead``: always 503. ``#lag``: slow but within the timeout. Anything else: immediate
    success. ``healthy = True`` turns every fault off.
    """

    def __init__(self) -> None:
        self.healthy = False

    def __call__(self, request: Request) -> Reply:
        prompt, n, faults = request.prompt, request.attempt, not self.healthy
        if faults and "#dead" in prompt:
            return Reply.error(503, "overloaded")
        if faults and "#429" in prompt and n == 1:
            return Reply.error(429, "rate limited", retry_after=0)
        if faults and "#500" in prompt and n <= 2:
            return Reply.error(500, "boom")
        if faults and "#bad" in prompt and n == 1:
            return Reply(raw=b'{"choices": [ {"message": ')
        if faults and "#bad" in prompt and n == 2:
            return Reply(body={"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []})
        delay = 1.5 if faults and "#slow" in prompt and n == 1 else 0.2 if "#lag" in prompt else 0.0
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return Reply(text=REPLY.format(tag=request.key), delay=delay, usage=usage)


def fault_server() -> FakeServer:
    """A started ``FakeServer`` running ``MarkerFaults``, attempts counted per ``<tag>`` of the prompt."""
    return FakeServer(MarkerFaults(), key=lambda request: re.search(r"<(\w+)>", request.prompt).group(1)).start()


@pytest.fixture
def server():
    s = fault_server()
    yield s
    s.close()


def api_cfg(ann_path, save_path, url: str, save_name: str = "api", **kw) -> ApiInferenceConfig:
    """An ``inference_chatgpt.py`` config: ``kw`` names fields of the config or of its ``OpenAIConnection``."""
    conn = {k: kw.pop(k) for k in list(kw) if k in OpenAIConnection.__dataclass_fields__}
    conn = {"openai_model": "m", **conn, "openai_base_url": url}
    return ApiInferenceConfig(
        ann_path=str(ann_path), save_name=save_name, save_path=str(save_path), openai=OpenAIConnection(**conn), **kw
    )


def counts(result) -> tuple[int, int]:
    return result.done, result.failed


def _backend(server, **kw) -> OpenAIBackend:
    kw = {"max_retries": 3, "timeout": 0.5, "max_concurrency": 4, "backoff_base": 0.01, "backoff_max": 0.05, **kw}
    return OpenAIBackend(model="m", base_url=server.base_url, **kw)


def test_retries_recover_every_fault_and_stop_at_observation(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    prompts = [f"<p{i}> {fault}" for i, fault in enumerate(["", "#429", "#500", "#slow", "#bad", "#lag", "", ""])]
    backend = _backend(server)
    out = backend.generate(prompts, stop=["\nObservation:"])
    assert out == [REPLY.format(tag=f"p{i}").split("\nObservation:")[0] for i in range(8)]
    assert server.attempts["p1"] == 2 and server.attempts["p2"] == 3 and server.attempts["p3"] == 2
    assert server.attempts["p4"] == 3 and server.attempts["p0"] == 1
    assert backend.usage.retries == 1 + 2 + 1 + 2 and backend.usage.failures == 0
    assert backend.usage.prompt_tokens == 80 and backend.usage.completion_tokens == 40
    assert server.max_in_flight <= 4
    assert set(server.auth) == {"Bearer EMPTY"}  # placeholder key for local servers
    assert server.requests[0]["stop"] == ["\nObservation:"] and server.requests[0]["temperature"] == 0.0
    assert server.requests[0]["messages"][0]["role"] == "user"


def test_failure_after_retries_is_reported_not_lost(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = _backend(server, max_retries=2)
    results = backend.complete(["<a> ok", "<b> #dead", "<c> ok"])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].attempts == 3 and "HTTP 503" in results[1].error
    assert server.auth[0] == "Bearer sk-test"  # read from the environment at call time
    with pytest.raises(LLMError, match=r"prompt 1 of 2 failed after 3 attempt\(s\): HTTP 503"):
        backend.generate(["<d> ok", "<e> #dead"])


def test_inference_chatgpt_end_to_end_with_faults_and_resume(server, tmp_path, monkeypatch):
    anns = []
    faults = ["", "#429", "#500", "#slow", "#bad", "#dead", "#lag", "", "#dead", ""]
    for i in range(20):
        inst = f"Instruction <s{i}> {faults[i % len(faults)]}\nLet's think step by step.\n"
        out = f"Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: s{i}\nObservation:\n"
        anns.append({"id": i, "instruction": inst, "input": "", "output": out})
    ann_path = tmp_path / "ann.json"
    ann_path.write_text(json.dumps(anns))
    cfg = api_cfg(
        ann_path,
        tmp_path,
        server.base_url,
        max_retries=2,
        timeout=0.5,
        backoff_base=0.01,
        max_concurrency=4,
        save_every=3,
    )
    done, failed = counts(run(cfg))
    assert (done, failed) == (16, 4)
    chunk = tmp_path / "api" / "api_0.json"
    preds = load_predictions(chunk)
    ids = [p["id"] for p in preds]
    assert len(ids) == len(set(ids)) == 16 and ids == sorted(ids)
    failed_ids = {f["id"] for f in json.loads(chunk.with_suffix(".failed.json").read_text())}
    assert failed_ids == {5, 8, 15, 18} and not failed_ids & set(ids)
    first = preds[0]
    assert (
        first["output"]
        == anns[0]["instruction"] + THOUGHT_PREFIX + "Yes\nAction: Edge Detection On Image\nAction Input: s0"
    )
    assert server.requests[0]["messages"][0]["content"].endswith("\n" + THOUGHT_PREFIX)

    server.respond.healthy = True
    before = len(server.requests)
    cfg.resume = True
    assert counts(run(cfg)) == (4, 0)
    assert len(server.requests) - before == 4  # only the failed ones were sent again
    preds = load_predictions(chunk)
    assert [p["id"] for p in preds] == list(range(20))
    assert not chunk.with_suffix(".failed.json").exists()

    from g4t.inference import main

    cfg.resume = True
    assert main(cfg) == 0  # nothing left to do, then evaluation
    report = json.loads((tmp_path / "api" / "api_report.json").read_text())
    assert report["counts"]["scored"] == 20 and report["published"]["SR_act"] == 1.0


def test_completions_mode_sends_the_training_prompt(server, tmp_path):
    ann_path = tmp_path / "ann.json"
    ann_path.write_text(
        json.dumps(
            [{"id": "a", "instruction": "Do it <t1>\n", "output": "Thought: Do I need to use a tool? No\nAI: x\n"}]
        )
    )
    cfg = api_cfg(
        ann_path, tmp_path, server.base_url, save_name="c", openai_mode="completions", template="gpt4tools",
        openai_model="gpt4tools-lora", evaluate=False, output_format="completion",
    )  # fmt: skip
    assert counts(run(cfg)) == (1, 0)
    assert server.requests[0]["prompt"] == "Do it <t1>\n\n### ASSISTANT:\n"
    assert server.requests[0]["model"] == "gpt4tools-lora"
    assert (
        load_predictions(tmp_path / "c" / "c_0.json")[0]["output"] == REPLY.format(tag="t1").split("\nObservation:")[0]
    )


def test_api_key_from_the_named_variable(server, monkeypatch):
    """``--api_key_env`` names the variable the key is read from, at request time."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    monkeypatch.setenv("VLLM_KEY", "sk-vllm")
    conn = OpenAIConnection(openai_model="m", openai_base_url=server.base_url, api_key_env="VLLM_KEY", max_retries=0)
    assert conn.backend().generate(["<k> ok"]) == [REPLY.format(tag="k")]
    assert server.auth == ["Bearer sk-vllm"]
