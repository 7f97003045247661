"""The demo in a real browser: headless Chromium (Debian's) against a server started on 127.0.0.1.

A scripted LLM calls "Edge Detection On Image" (the real OpenCV tool) on the uploaded image; the test
uploads a picture, asks for its edges with Enter and with the Submit button, and checks that the
tool's output image is shown in the chat, that the reasoning is collapsed, that another browser
session sees nothing, and that Clear empties the chat.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from test_app import edge_replies  # the same scripted model as the handler tests

from g4t.agent import Agent
from g4t.app import ChatBot, build_demo, launch_demo
from g4t.llm import ScriptedBackend
from g4t.tools import Toolbox

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_sessions")
    bot = ChatBot(Agent(ScriptedBackend(edge_replies), Toolbox("Image2Canny_cpu"), max_steps=3), root)
    demo = build_demo(bot)
    port = _free_port()
    try:
        launch_demo(demo, bot, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
        yield f"http://127.0.0.1:{port}/", bot
    finally:
        demo.close()


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
