"""Streaming from backend to chat: the stream contract, the agent's streamed turn, and the demo's
turns with a time limit, Stop, odd uploads and images shown by URL (no browser: see test_app_browser)."""

from __future__ import annotations

import io
import random
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from g4t.agent import STOP, STOPPED_ANSWER, Agent, ReplyDelta, StepDone, TurnDone
from g4t.chat import STOPPED, ChatBot
from g4t.llm import ScriptedBackend
from g4t.llm.base import stream_text, stream_until_stop, truncate_at_stop
from g4t.tools import Toolbox
from testkit.fake_openai import FakeServer, scripted
from testkit.replies import EDGE, edge_replies

ANSWER = "Thought: Do I need to use a tool? No\nAI: " + "a slow answer, word by word, " * 20 + "THE END"


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds (a deadline for a hang, not a speed check)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def _texts(messages) -> list[str]:
    return [m["content"] for m in messages if isinstance(m["content"], str)]


# ---- the stream contract -----------------------------------------------------------------------


def test_stream_until_stop_equals_truncate_at_stop_for_any_split():
    rng = random.Random(7)
    pieces = ["a", "\n", "Obs", "\nObservation:", "\n\t", "ervation:", "AI: hi", " ", "X"]
    for _ in range(3_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        deltas = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        out = list(stream_until_stop(deltas, STOP))
        assert "".join(out) == truncate_at_stop(text, STOP) and all(out)
    # text that may start a stop string is held back, and released once it cannot
    assert list(stream_until_stop(["ab\nObs", "erva", "tion: x"], STOP)) == ["ab"]
    assert list(stream_until_stop(["ab\nObs", "cure"], STOP)) == ["ab", "\nObscure"]


def test_stream_text_falls_back_to_generate_and_closing_reaches_the_backend():
    class Plain:
        def generate(self, prompts, stop=(), gen=None):
            return ["whole reply"]

    assert list(stream_text(Plain(), "p")) == ["whole reply"]
    backend = ScriptedBackend(["0123456789" * 10], chunk_chars=5)
    deltas = stream_text(backend, "p", STOP)
    assert next(deltas) == "01234"
    deltas.close()
    assert backend.streams_closed_early == 1
    assert "".join(stream_text(backend, "p", ["56"])) == "01234" and backend.streams_closed_early == 1


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_openai_backend_streams_deltas_cut_at_a_stop_spanning_chunks(mode):
    from g4t.llm.openai_backend import OpenAIBackend

    reply = "Thought: Do I need to use a tool? Yes\nAction: X\nAction Input: y\nObservation: never"
    with FakeServer(scripted(lambda prompt: reply, chunk_chars=3)) as server:
        backend = OpenAIBackend("m", base_url=server.base_url, mode=mode, max_retries=0)
        deltas = list(backend.stream("prompt", STOP))
        assert len(deltas) > 10 and "".join(deltas) == reply.split("\nObservation:")[0]
        assert "".join(deltas) == backend.generate(["prompt"], STOP)[0]
        assert server.requests[0]["stream"] is True and "stream" not in server.requests[1]


def test_openai_stream_retries_before_the_first_token_and_closing_ends_the_response():
    from g4t.llm.openai_backend import OpenAIBackend

    with FakeServer(scripted(lambda prompt: "x" * 400, chunk_chars=2, delay=0.01, fail_first=1)) as server:
        backend = OpenAIBackend("m", base_url=server.base_url, max_retries=2, backoff_base=0.01)
        stream = backend.stream("prompt")
        assert next(stream) == "xx" and backend.usage.retries == 1  # the 503 was retried
        stream.close()  # the consumer stops listening: the HTTP response is closed
        _wait(lambda: server.streams_cut == 1, "the server to see the client go")
    with FakeServer(scripted(lambda prompt: "x", fail_first=5)) as server:
        backend = OpenAIBackend("m", base_url=server.base_url, max_retries=1, backoff_base=0.01)
        with pytest.raises(Exception, match=r"failed after 2 attempt\(s\): HTTP 503"):
            list(backend.stream("prompt"))


# ---- the agent's streamed turn --------------------------------------------------------------


def test_run_stream_yields_the_reply_as_written_then_steps_then_the_result(tmp_path, square_image):
    backend = ScriptedBackend(edge_replies, chunk_chars=4)
    conversation = Agent(backend, Toolbox("Image2Canny_cpu")).conversation(tmp_path)
    name, _ = conversation.add_image(square_image)
    events = list(conversation.run_stream(f"{name} detect the edges"))
    kinds = [type(e) for e in events]
    assert kinds[-1] is TurnDone and kinds.count(StepDone) == 1
    first_step = events[: kinds.index(StepDone)]
    assert len(first_step) > 5 and all(isinstance(e, ReplyDelta) and e.step == 0 for e in first_step)
    texts = [e.text for e in first_step]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))  # the reply so far, growing
    assert f"Action: {EDGE}" in texts[-1] and "Observation" not in texts[-1]
    result = events[-1].result
    assert result.answer.startswith("Here are the edges: image/") and events[kinds.index(StepDone)].step.tool == EDGE
    # run() is the same loop: same answer, same memory
    again = Agent(ScriptedBackend(edge_replies), Toolbox("Image2Canny_cpu")).conversation(tmp_path / "b")
    name, _ = again.add_image(square_image)
    assert again.run(f"{name} detect the edges").answer.startswith("Here are the edges: image/")
    assert conversation.memory.exchanges[-1].ai == result.answer


def test_closing_run_stream_stops_the_model_and_remembers_the_stop(tmp_path):
    backend = ScriptedBackend([ANSWER], chunk_chars=4)
    conversation = Agent(backend, Toolbox("Image2Canny_cpu")).conversation(tmp_path)
    stream = conversation.run_stream("talk slowly")
    partial = [next(stream) for _ in range(20)]
    assert all(isinstance(e, ReplyDelta) for e in partial) and "THE END" not in partial[-1].text
    stream.close()
    assert backend.streams_closed_early == 1
    assert conversation.memory.exchanges[-1].human == "talk slowly"
    assert conversation.memory.exchanges[-1].ai == STOPPED_ANSWER


def test_a_subclass_loop_without_events_still_runs(tmp_path):
    from g4t.agent import Conversation, TurnResult
    from g4t.prompts import Step

    class OneShot(Conversation):
        def _run(self, user_input, steps, images):
            steps.append(Step("Tool", "in", "out"))
            return TurnResult(f"done: {user_input}", steps, images)

    agent = Agent(ScriptedBackend(["unused"]), Toolbox("Image2Canny_cpu"))
    conversation = OneShot(agent, agent.conversation(tmp_path).workspace, agent.conversation(tmp_path).memory)
    assert conversation.run("x").answer == "done: x"
    bot = ChatBot(agent, tmp_path / "s")
    session = bot.new_session()
    session.conversation = OneShot(agent, session.conversation.workspace, session.conversation.memory)
    _, messages = bot.run_text(session, "y")
    assert messages[-2]["metadata"]["title"] == "Used tool 1: Tool" and messages[-1]["content"] == "done: y"


# ---- the demo's turns ----------------------------------------------------------------------------


@pytest.fixture
def slow_bot(tmp_path):
    backend = ScriptedBackend(edge_replies, chunk_chars=4, delay=0.01)
    return ChatBot(
        Agent(backend, Toolbox("Image2Canny_cpu"), max_steps=3), tmp_path / "sessions", settle_s=0.0, refresh_s=0.0
    )


def test_submit_stream_shows_the_reasoning_and_the_answer_as_they_are_written(slow_bot, square_image):
    snapshots = [messages for _, messages in slow_bot.submit_stream(None, "detect the edges", square_image)]
    assert snapshots[0] == []  # the handler answers at once; the upload is decoded in the worker
    pending = [m for s in snapshots for m in s if (m.get("metadata") or {}).get("status") == "pending"]
    titles = [m["metadata"]["title"] for m in pending]
    assert titles[0] == "Thinking (step 1)" and f"Used tool 1: {EDGE}" in titles  # named once the Action is written
    tool = next(m for m in reversed(pending) if m["metadata"]["title"] == f"Used tool 1: {EDGE}")
    assert "Action Input: image/" in tool["content"]  # the step's reasoning, inside the thought
    partial = [t for s in snapshots[:-1] for t in _texts(s) if t.startswith("Here are the edges")]
    final = snapshots[-1]
    answer = next(t for t in _texts(final) if t.startswith("Here are the edges"))
    assert partial and len(partial[0]) < len(answer)  # the answer appeared before it was complete
    assert [m["metadata"]["status"] for m in final if m.get("metadata")] == ["done", "done"]
    assert isinstance(final[-1]["content"], dict) and final[-1]["content"]["path"].endswith(".png")


def test_stop_ends_the_turn_at_once_and_the_model_stops(tmp_path):
    backend = ScriptedBackend([ANSWER], chunk_chars=4, delay=0.05)
    bot = ChatBot(Agent(backend, Toolbox("Image2Canny_cpu")), tmp_path, settle_s=0.0, refresh_s=0.0)
    stream = bot.submit_stream(None, "talk", None)
    session, _ = next(stream)
    for session, messages in stream:
        if any("a slow answer" in t for t in _texts(messages)):
            break
    session, messages = bot.stop(session)
    assert messages[-1]["content"] == STOPPED and "THE END" not in "".join(_texts(messages))
    assert [m for _, m in stream][-1] == messages  # the follower ends with the same chat
    _wait(lambda: backend.streams_closed_early == 1, "the model's stream to close")
    _wait(lambda: session.conversation.memory.exchanges[-1].ai == STOPPED_ANSWER, "memory to note the stop")
    # the session goes on
    backend.delay, backend.replies = 0.0, ["Thought: Do I need to use a tool? No\nAI: back"]
    assert bot.run_text(session, "again")[1][-1]["content"] == "back"


def test_closing_the_stream_stops_the_turn_like_stop(tmp_path):
    backend = ScriptedBackend([ANSWER], chunk_chars=4, delay=0.05)
    bot = ChatBot(Agent(backend, Toolbox("Image2Canny_cpu")), tmp_path, settle_s=0.0, refresh_s=0.0)
    stream = bot.submit_stream(None, "talk", None)
    session, _ = next(stream)
    next(stream)
    stream.close()  # what Gradio does when Stop cancels the event
    assert session.messages[-1]["content"] == STOPPED
    _wait(lambda: backend.streams_closed_early == 1, "the model's stream to close")


def test_a_turn_over_its_time_limit_ends_with_a_readable_message(tmp_path):
    class Stuck:  # a backend without streaming that hangs: the worker cannot be interrupted
        release = threading.Event()

        def generate(self, prompts, stop=(), gen=None):
            self.release.wait(30)
            return ["Thought: Do I need to use a tool? No\nAI: too late"]

    bot = ChatBot(Agent(Stuck(), Toolbox("Image2Canny_cpu")), tmp_path, turn_timeout=0.5)
    session, messages = bot.run_text(None, "hello")
    assert messages[-1]["content"].startswith("Sorry, this took longer than the time limit of 0.5 s")
    assert "too late" not in "".join(_texts(messages))
    # the stuck worker still holds the conversation: a new message is refused with a reason, not queued forever
    assert bot.run_text(session, "again")[1][-1]["content"].startswith("Please wait")
    Stuck.release.set()
    _wait(lambda: not session.turn.worker.alive, "the stuck worker to end")
    session, messages = bot.run_text(session, "again")
    assert messages[-1]["content"] == "too late"  # its late answer was dropped, the new one shown


def test_a_slow_streaming_turn_is_cut_at_the_limit_and_the_model_stops(tmp_path):
    backend = ScriptedBackend([ANSWER.split("\n")[1]], chunk_chars=4, delay=0.05)  # "AI: a slow answer..."
    bot = ChatBot(Agent(backend, Toolbox("Image2Canny_cpu")), tmp_path, turn_timeout=1.0)
    session, messages = bot.run_text(None, "hello")
    assert messages[-1]["content"].startswith("Sorry, this took longer than the time limit")
    assert any("a slow answer" in t for t in _texts(messages))  # what came in time is kept
    _wait(lambda: backend.streams_closed_early == 1, "the model's stream to close")


def test_a_follower_that_went_away_is_settled_by_the_next_message(tmp_path):
    bot = ChatBot(Agent(ScriptedBackend(["AI: first"]), Toolbox("Image2Canny_cpu")), tmp_path)
    stream = bot.submit_stream(None, "one", None)
    session, _ = next(stream)  # the page went away without closing the stream
    _wait(lambda: not session.turn.worker.alive, "the worker to finish")
    session, messages = bot.run_text(session, "two")
    assert _texts(messages) == ["one", "first", "two", "first"]


# ---- uploads ---------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(buf, "PNG")
    return buf.getvalue()[:300]


ODD_UPLOADS = {
    "empty.png": (b"", "is empty"),
    "truncated.png": (_truncated_png(), "damaged or truncated"),
    "text.png": (b"hello, I am not a picture\n" * 40, "is not an image"),
    "drawing.png": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
    "huge.png": (_png(60000, 60000), "too large"),
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", list(ODD_UPLOADS))
def test_odd_uploads_get_the_apps_message_and_leave_nothing_behind(tmp_path, name):
    content, reason = ODD_UPLOADS[name]
    uploads = tmp_path / "gradio"
    upload = uploads / "0123abcd" / name  # Gradio keeps each upload in a folder of its own
    upload.parent.mkdir(parents=True)
    upload.write_bytes(content)
    backend = ScriptedBackend(edge_replies)
    bot = ChatBot(Agent(backend, Toolbox("Image2Canny_cpu")), tmp_path / "sessions", upload_root=uploads)
    session, messages = bot.submit(None, "detect the edges of this image", str(upload))
    assert _texts(messages)[0] == "detect the edges of this image"  # the user's words stay on screen
    error = _texts(messages)[-1]
    assert error.startswith(f"Sorry, I could not use that image: '{name}'") and reason in error
    assert "not answered" in error and str(tmp_path) not in error
    assert backend.prompts == []  # the message was not sent to the model
    assert not any((bot.image_root / session.id).rglob("*.*"))  # nothing saved in the session
    assert not upload.exists() and not upload.parent.exists()  # the temporary upload is gone
    # the session goes on: a good upload works
    good = tmp_path / "good.png"
    Image.new("RGB", (80, 60), "white").save(good)
    session, messages = bot.submit(session, "detect the edges of this image", str(good))
    assert _texts(messages)[-1].startswith("Here are the edges: image/")
    assert good.exists()  # only uploads under upload_root are deleted, and only failed ones


# ---- images shown by URL ------------------------------------------------------------------------


def test_image_shelf_copies_each_image_once_and_forgets_the_session(tmp_path, square_image):
    from g4t.app import ImageShelf

    bot = ChatBot(Agent(ScriptedBackend(edge_replies), Toolbox("Image2Canny_cpu")), tmp_path / "sessions")
    shelf = ImageShelf(tmp_path / "served")
    session, messages = bot.submit(None, "detect the edges of this image", square_image)
    shown = shelf.display(session, messages)
    links = [m["content"] for m in shown if isinstance(m["content"], str) and m["content"].startswith("![")]
    assert len(links) == 2 and all(isinstance(m["content"], str) for m in shown)
    urls = [re.fullmatch(r"!\[image/\w+\.png\]\((gradio_api/file=.+)\)", link)[1] for link in links]
    copies = [Path(url.removeprefix("gradio_api/file=")) for url in urls]
    assert all(c.parent == shelf.root / session.public_id and c.is_file() for c in copies)
    assert session.id not in "".join(urls)  # the session's folder is never named
    before = [c.stat().st_mtime_ns for c in copies]
    assert shelf.display(session, messages) == shown and [c.stat().st_mtime_ns for c in copies] == before
    shelf.forget(session)
    assert not (shelf.root / session.public_id).exists()


def test_the_image_box_hands_uploads_to_the_app_unopened():
    import base64

    import gradio as gr
    from gradio.data_classes import ImageData

    from g4t.app import _image_box

    box = _image_box(gr, type="filepath", image_mode=None)
    assert box.get_block_name() == "image"  # drawn by the frontend's own Image component
    assert box.preprocess(ImageData(path="/tmp/uploads/not-an-image.png")) == "/tmp/uploads/not-an-image.png"
    pasted = "data:image/png;base64," + base64.b64encode(b"\x89PNG...").decode()
    assert box.preprocess(ImageData(url=pasted)) == b"\x89PNG..." and box.preprocess(None) is None
    assert not Path(_image_box.__code__.co_filename).with_suffix(".pyi").exists()  # no stub written by Gradio
