"""The demo in a real browser: headless Chromium (Debian's) against servers started on 127.0.0.1.

A scripted LLM calls "Edge Detection On Image" (the real OpenCV tool) on the uploaded image; the tests
upload a picture, ask for its edges with Enter and with the Submit button, and check that the tool's
output image is shown in the chat, that the reasoning is collapsed, that another browser session sees
nothing, and that Clear empties the chat. Odd uploads get the app's message in the chat. A slow
scripted model streams: its text appears while it writes, Stop ends it, a turn over the time limit
ends with a readable message, and other users load the page and get answers meanwhile.
"""

from __future__ import annotations

import io
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from g4t.agent import Agent
from g4t.app import ChatBot, build_demo, launch_demo
from g4t.llm import ScriptedBackend
from g4t.tools import Toolbox
from testkit.replies import edge_replies  # the same scripted model as the handler tests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(bot: ChatBot):
    demo = build_demo(bot)
    port = _free_port()
    try:
        launch_demo(demo, bot, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
        yield f"http://127.0.0.1:{port}/", bot
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_sessions")
    yield from _serve(ChatBot(Agent(ScriptedBackend(edge_replies), Toolbox("Image2Canny_cpu"), max_steps=3), root))


LONG_ANSWER = "AI: a slow answer, word by word, " + "and then some more words, " * 120 + "THE END"
SLOW_TIMEOUT_S = 15  # long enough for another page to load on a busy machine before it passes


def slow_replies(prompt: str) -> str:
    """By the request's last keyword: "talk" (a tool step, then a long answer), "slow" (a long
    answer only: over the time limit), "hello" (a short answer)."""
    word = max(("talk", "slow", "hello"), key=prompt.rfind)
    after = prompt[prompt.rfind(word) :]
    if word == "hello":
        return "Thought: Do I need to use a tool? No\nAI: hi there"
    if word == "talk" and "Observation:" not in after:
        return "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: image/none.png\n"
    return "Thought: Do I need to use a tool? No\n" + LONG_ANSWER


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """A model writing 4 characters every 40 ms (a long answer takes ~32 s); turns end after 15 s."""
    backend = ScriptedBackend(slow_replies, chunk_chars=4, delay=0.04)
    agent = Agent(backend, Toolbox("Image2Canny_cpu"), max_steps=3)
    yield from _serve(ChatBot(agent, tmp_path_factory.mktemp("slow_sessions"), turn_timeout=SLOW_TIMEOUT_S))


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


def _open(browser, url):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#g4t-text textarea")
    return page


def _chat_images(page) -> list[str]:
    return [img.get_attribute("src") or "" for img in page.locator("#g4t-chat img").all()]


def _wait_images(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#g4t-chat img').length >= {n}")


def test_upload_ask_for_edges_and_see_the_result(server, browser, square_image, tmp_path):
    url, bot = server
    square_image.save(tmp_path / "square.png")
    page = _open(browser, url)

    # upload + Enter
    page.locator("#g4t-image input[type=file]").set_input_files(str(tmp_path / "square.png"))
    page.wait_for_selector("#g4t-image img")
    box = page.locator("#g4t-text textarea")
    box.fill("detect the edges of this image")
    box.press("Enter")
    _wait_images(page, 2)
    page.get_by_text("Here are the edges: image/").first.wait_for()

    sessions = list(bot.image_root.iterdir())
    assert len(sessions) == 1
    files = {p.name for p in (sessions[0] / "image").iterdir()}
    answer = page.get_by_text("Here are the edges: image/").first.inner_text()
    edge_name = re.search(r"image/(\w+\.png)", answer)[1]
    assert edge_name in files and len(files) == 2
    srcs = _chat_images(page)
    assert any(src.endswith("/" + edge_name) for src in srcs), srcs  # the tool output, inline
    assert {src.rsplit("/", 1)[-1] for src in srcs} == files  # the upload too
    assert box.input_value() == ""  # the box is cleared after sending

    # the reasoning is there but collapsed until clicked
    chat = page.locator("#g4t-chat")
    assert "Used tool 1: Edge Detection On Image" in chat.inner_text()
    assert "Observation:" not in chat.inner_text()
    page.get_by_text("Used tool 1: Edge Detection On Image").first.click()
    page.wait_for_function("document.querySelector('#g4t-chat').innerText.includes('Observation: image/')")

    # the Submit button works as well (edges of the edge map this time)
    box.fill("detect the edges of this image")
    page.locator("#g4t-submit").click()
    _wait_images(page, 3)
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    assert "Traceback" not in page.content()

    # another browser session starts empty and cannot see this one
    other = _open(browser, url)
    other.locator("#g4t-text textarea").fill("what do you see?")
    other.locator("#g4t-text textarea").press("Enter")
    other.get_by_text("Please upload an image first.").wait_for()
    assert _chat_images(other) == []
    other.context.close()

    # Clear empties the chat (and the conversation's memory)
    page.locator("#g4t-clear").click()
    page.wait_for_function("document.querySelectorAll('#g4t-chat img').length === 0")
    assert "Here are the edges" not in page.locator("#g4t-chat").inner_text()
    box.fill("and now?")
    box.press("Enter")
    page.get_by_text("Please upload an image first.").wait_for()  # the memory was cleared too
    page.context.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def _chat(page) -> str:
    return page.locator("#g4t-chat").inner_text()


def _send(page, text: str) -> None:
    box = page.locator("#g4t-text textarea")
    box.fill(text)
    box.press("Enter")


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(buf, "PNG")
    return buf.getvalue()[:300]


def test_odd_uploads_get_the_apps_message_in_the_chat(server, browser, tmp_path):
    url, bot = server
    tag = uuid.uuid4().hex[:8]  # Gradio's upload folder is shared: names of our own
    odd = {
        f"{tag}-empty.png": (b"", "is empty"),
        f"{tag}-truncated.png": (_truncated_png(), "damaged or truncated"),
        f"{tag}-text.png": (b"hello, I am not a picture\n" * 40, "is not an image"),
        f"{tag}-drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
    }
    sessions_before = set(bot.image_root.iterdir())
    page = _open(browser, url)
    remove = page.locator("#g4t-image [aria-label='Remove Image']")  # shown once an upload is in the box
    for i, (name, (content, reason)) in enumerate(odd.items()):
        (tmp_path / name).write_bytes(content)
        page.locator("#g4t-image input[type=file]").set_input_files(str(tmp_path / name))
        remove.wait_for()
        _send(page, "detect the edges of this image")
        errors = page.get_by_text("Sorry, I could not use that image")
        errors.nth(i).wait_for()
        shown = errors.nth(i).inner_text()
        assert f"'{name}'" in shown and reason in shown, shown
        remove.wait_for(state="detached")  # the handler emptied the box
    assert page.locator(".toast-body").count() == 0  # no generic Gradio "Error" toast
    assert "Traceback" not in page.content()
    # nothing left behind: no file in the session's folder, the failed uploads deleted from Gradio's folder
    (session,) = set(bot.image_root.iterdir()) - sessions_before
    assert [p for p in session.rglob("*") if p.is_file()] == []
    assert [p for name in odd for p in bot.upload_root.rglob(name)] == []
    page.context.close()


def test_streaming_shows_the_text_as_it_is_written_and_stop_ends_it(slow_server, browser):
    url, bot = slow_server
    page = _open(browser, url)
    _send(page, "talk to me")
    # the step's reasoning streams inside its "Used tool" block, then the answer streams
    page.get_by_text("Used tool 1: Edge Detection On Image").first.wait_for()
    page.get_by_text("a slow answer, word by word").first.wait_for()
    assert "THE END" not in _chat(page)  # partial text, before the turn ended
    shown = len(_chat(page))
    page.wait_for_function(f"document.querySelector('#g4t-chat').innerText.length > {shown}")  # still growing
    page.locator("#g4t-stop").click()
    page.get_by_text("Stopped.").first.wait_for()
    backend = bot.agent.backend
    deadline = time.monotonic() + 10
    while backend.streams_closed_early < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.streams_closed_early == 1  # the model stopped writing
    assert "THE END" not in _chat(page)
    _send(page, "hello")  # the session goes on
    page.get_by_text("hi there").first.wait_for()
    page.context.close()


def test_a_slow_turn_does_not_block_other_users(slow_server, browser):
    url, bot = slow_server
    slow = _open(browser, url)
    _send(slow, "slow please")
    slow.get_by_text("a slow answer, word by word").first.wait_for()  # the slow turn is running
    other = _open(browser, url)  # another user loads the page meanwhile
    assert "time limit" not in _chat(slow)  # ... while the slow turn still runs
    _send(other, "hello")  # one model (--concurrency_limit 1): this waits for the slow turn's time limit
    # the slow turn ends at its time limit, with a readable message and its partial text kept
    slow.get_by_text(f"took longer than the time limit of {SLOW_TIMEOUT_S} s").first.wait_for()
    other.get_by_text("hi there").first.wait_for()  # and the other user gets an answer
    assert "THE END" not in _chat(slow) and "a slow answer" in _chat(slow)
    assert "hi there" not in _chat(slow) and "a slow answer" not in _chat(other)
    for page in (slow, other):
        page.context.close()
