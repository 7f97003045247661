"""Any OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp) behind the backend contract.

``mode="chat"`` sends the prompt as one chat message (the published ChatGPT baseline);
``mode="completions"`` sends the raw prompt to ``/v1/completions``, so a GPT4Tools model served by
vLLM/SGLang sees exactly its training layout. Requests run ``max_concurrency`` at a time; 429, 5xx,
timeouts, connection errors and malformed bodies are retried with exponential backoff and full
jitter (``Retry-After`` honoured, bounded). The API key is read from ``OPENAI_API_KEY`` (or the
variable named by ``api_key_env``) when a request is made, never at import.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from g4t.llm.base import Completion, GenerationConfig, LLMError, OnResult, stream_until_stop, truncate_at_stop

__all__ = ["OpenAIBackend", "Usage"]

# Local servers (vLLM, Ollama...) accept any key; the SDK refuses an empty one.
PLACEHOLDER_KEY = "EMPTY"


@dataclass
class Usage:
    """Token and request counters, summed over every call of one backend (thread-safe updates).

    Attributes:
        prompt_tokens: prompt tokens reported by the server.
        completion_tokens: completion tokens reported by the server.
        requests: HTTP requests sent, retries included.
        retries: requests that were retried.
        failures: prompts that failed after all retries (or with a non-retryable error).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def summary(self) -> str:
        return (
            f"{self.requests} requests ({self.retries} retried, {self.failures} failed), "
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion = {self.total_tokens} tokens"
        )


def _refuse_constraint(gen: GenerationConfig | None) -> None:
    """``--constrain_tools`` masks the model's scores token by token: a server's API has no way to do that,
    so the flag is refused rather than silently ignored."""
    if gen is not None and gen.constrain_tools:
        raise ValueError(
            "--constrain_tools needs a local model (--backend hf / --base_model): an OpenAI-compatible server "
            "cannot restrict the tool names it writes; drop the flag to use this server."
        )


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIBackend:
    """Generate through an OpenAI-compatible HTTP API.

    Args:
        model: model name on the server (``gpt-4o-mini``, the vLLM ``--served-model-name`` / LoRA name...).
        base_url: server root ending in ``/v1``; None = api.openai.com (or ``OPENAI_BASE_URL``).
        mode: ``chat`` (``/v1/chat/completions``) or ``completions`` (raw prompt, ``/v1/completions``).
        api_key: explicit key; default the ``api_key_env`` variable at call time, else ``"EMPTY"`` (local servers).
        max_concurrency: requests in flight at once.
        max_retries: retries per prompt after the first attempt (429/5xx/timeouts/connection/malformed).
        timeout: seconds per request.
        chat_role: role of the single chat message (``user``; the published baseline used ``system``).
        backoff_base: first retry delay in seconds (doubles each retry, full jitter).
        backoff_max: cap on one retry delay (and on an honoured ``Retry-After``).
        max_tokens: completion budget when no ``GenerationConfig`` is given (published ChatGPT run: 400).
        api_key_env: the environment variable that holds the key (``OPENAI_API_KEY``).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        mode: Literal["chat", "completions"] = "chat",
        api_key: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        chat_role: Literal["system", "user"] = "user",
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_tokens: int = 512,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        if mode not in ("chat", "completions"):
            raise ValueError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if chat_role not in ("system", "user"):
            raise ValueError(f"chat_role must be 'system' or 'user', got {chat_role!r}")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("max_concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        self.base_url = base_url
        self.mode = mode
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.chat_role = chat_role
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_tokens = max_tokens
        self.api_key_env = api_key_env
        self.usage = Usage()
        self._lock = threading.Lock()
        self._rng = random.Random()

    # -- public API ------------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        """Backend contract: completions in input order.

        Raises:
            LLMError: naming the first failed prompt and the cause, after retries.
        """
        results = self.complete(prompts, stop, gen)
        for i, r in enumerate(results):
            if not r.ok:
                raise LLMError(f"prompt {i} of {len(results)} failed after {r.attempts} attempt(s): {r.error}")
        return [r.text for r in results]

    def complete(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] = (),
        gen: GenerationConfig | None = None,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """Backend contract, per sample: one ``Completion`` per prompt; failures are returned, never raised.

        Args:
            prompts: the prompts.
            stop: stop strings (sent to the server and applied again locally).
            gen: decoding settings; greedy (temperature 0) unless ``gen.do_sample``.
            on_result: called as ``on_result(index, completion)`` as each prompt finishes (any thread);
                once it returns False, no further request is sent (the prompts not sent get an error).

        Raises:
            ValueError: ``gen.constrain_tools`` (a server cannot be constrained; before any request).
        """
        _refuse_constraint(gen)
        client = self._client()
        results: list[Completion | None] = [None] * len(prompts)
        stopped = threading.Event()

        def work(i: int) -> None:
            if stopped.is_set():
                results[i] = Completion(None, "not sent: stopped by the caller")
                return
            results[i] = self._complete_one(client, prompts[i], list(stop), gen)
            if on_result is not None and on_result(i, results[i]) is False:
                stopped.set()

        if len(prompts) <= 1 or self.max_concurrency == 1:
            for i in range(len(prompts)):
                work(i)
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
                for f in [pool.submit(work, i) for i in range(len(prompts))]:
                    f.result()
        return results  # type: ignore[return-value]

    def stream(self, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None) -> Iterator[str]:
        """Streaming contract: the completion of ``prompt`` as text deltas (``stream=True``), cut at the first
        stop string (see ``g4t.llm.base.StreamingBackend``).

        A request that fails before any text arrives is retried like ``complete``; a failure after that
        raises (the text so far cannot be taken back). Closing the generator closes the HTTP response.

        Raises:
            LLMError: the request failed (after retries) or the stream broke off.
            ValueError: ``gen.constrain_tools`` (raised by the call itself, before any request).
        """
        _refuse_constraint(gen)
        params = {**self._params(prompt, list(stop), gen), "stream": True}
        return stream_until_stop(self._stream_deltas(self._client(), params), stop)

    def _stream_deltas(self, client, params: dict) -> Iterator[str]:
        import httpx
        import openai

        create = client.chat.completions.create if self.mode == "chat" else client.completions.create
        for attempt in range(self.max_retries + 1):
            started = False
            retry_after = None
            with self._lock:
                self.usage.requests += 1
            try:
                with create(**params) as response:  # closed on exit, also when our consumer closes us
                    for chunk in response:
                        choices = getattr(chunk, "choices", None)
                        if not choices:  # a usage-only chunk
                            continue
                        text = choices[0].delta.content if self.mode == "chat" else choices[0].text
                        if text:
                            started = True
                            yield text
                return
            except openai.APIStatusError as e:
                code = e.status_code
                reason = f"HTTP {code} from {self.base_url or 'api.openai.com'}: {_short(e.message)}"
                retryable = code in (408, 409, 429) or code >= 500
                retry_after = _retry_after(e.response)
            except (openai.APITimeoutError, openai.APIConnectionError, httpx.HTTPError) as e:
                reason, retryable = f"connection error or timeout: {_short(str(e))}", True
            except (openai.APIResponseValidationError, ValueError, AttributeError, IndexError, TypeError) as e:
                reason, retryable = f"malformed stream chunk: {_short(str(e))}", True
            if started or not retryable or attempt == self.max_retries:
                with self._lock:
                    self.usage.failures += 1
                where = "the stream broke off" if started else f"failed after {attempt + 1} attempt(s)"
                raise LLMError(f"streaming request {where}: {reason}")
            with self._lock:
                self.usage.retries += 1
                delay = self._rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.backoff_max))
            time.sleep(delay)

    # -- internals -------------------------------------------------------------------------------

    def _client(self):
        import openai

        key = self.api_key or os.environ.get(self.api_key_env) or PLACEHOLDER_KEY
        return openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout)

    def _params(self, prompt: str, stop: list[str], gen: GenerationConfig | None) -> dict:
        params: dict = {"model": self.model, "max_tokens": gen.max_new_tokens if gen else self.max_tokens}
        if gen is not None and gen.do_sample:
            params.update(temperature=gen.temperature, top_p=gen.top_p)
        else:
            params["temperature"] = 0.0
        if stop:
            params["stop"] = stop[:4]  # the API accepts at most 4
        if self.mode == "chat":
            params["messages"] = [{"role": self.chat_role, "content": prompt}]
        else:
            params["prompt"] = prompt
        return params

    def _reply_text(self, choice) -> str | None:
        """The text of ``choices[0]`` (None = malformed, retried); ``ToolCallingBackend`` reads ``tool_calls`` here."""
        return choice.message.content if self.mode == "chat" else choice.text

    def _request(self, client, params: dict) -> tuple[str, str | None, dict[str, int] | None]:
        """One HTTP request: ``(text, reported model, reported usage)``; raises ``_Retryable`` / ``LLMError``."""
        import httpx
        import openai

        with self._lock:
            self.usage.requests += 1
        try:
            if self.mode == "chat":
                resp = client.chat.completions.create(**params)
            else:
                resp = client.completions.create(**params)
        except openai.APITimeoutError as e:
            raise _Retryable(f"timeout after {self.timeout:g}s") from e
        except openai.APIConnectionError as e:
            raise _Retryable(f"connection error: {e}") from e
        except openai.APIStatusError as e:
            code = e.status_code
            if code in (408, 409, 429) or code >= 500:
                raise _Retryable(f"HTTP {code}: {_short(e.message)}", _retry_after(e.response)) from e
            raise LLMError(f"HTTP {code} from {self.base_url or 'api.openai.com'}: {_short(e.message)}") from e
        except (openai.APIResponseValidationError, ValueError, httpx.DecodingError) as e:
            raise _Retryable(f"malformed response body: {_short(str(e))}") from e
        try:
            choice = resp.choices[0]
            text = self._reply_text(choice)
        except (AttributeError, IndexError, TypeError) as e:
            raise _Retryable(f"malformed response body: no choices[0] text ({e})") from e
        if not isinstance(text, str):
            raise _Retryable("malformed response body: completion text is missing")
        usage = getattr(resp, "usage", None)
        counts = None
        if usage is not None:
            counts = {
                "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
            }
            with self._lock:
                self.usage.prompt_tokens += counts["prompt_tokens"]
                self.usage.completion_tokens += counts["completion_tokens"]
        model = getattr(resp, "model", None)
        return text, model if isinstance(model, str) else None, counts

    def _complete_one(self, client, prompt: str, stop: list[str], gen: GenerationConfig | None) -> Completion:
        params = self._params(prompt, stop, gen)
        start = time.perf_counter()
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                text, model, usage = self._request(client, params)
                return Completion(
                    truncate_at_stop(text, stop),
                    attempts=attempt + 1,
                    model=model,
                    usage=usage,
                    seconds=time.perf_counter() - start,
                )
            except LLMError as e:
                last = str(e)
                break
            except _Retryable as e:
                last = str(e)
                if attempt == self.max_retries:
                    break
                with self._lock:
                    self.usage.retries += 1
                    delay = self._rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
                if e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, self.backoff_max))
                time.sleep(delay)
        with self._lock:
            self.usage.failures += 1
        return Completion(None, last, attempts=attempt + 1, seconds=time.perf_counter() - start)


def _short(text: str, n: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _retry_after(response) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
