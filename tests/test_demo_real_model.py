"""``make demo`` as a new user runs it, in the browser: on a machine without a GPU or the Hub it starts
the shipped GPT4Tools model (``gpt4tools-smollm2``, committed in ``models/``) with the tools that run
offline, answers "detect the edges of this image" with a real edge map, and "thanks!" with words.

Slow (a real model on the CPU): ``make test ARGS="-m slow -k real_model"``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_app_browser import (
    CHROMIUM,
    _chat_images,
    _free_port,
    _open,
    _wait_images,
    browser,  # noqa: F401  the same headless Chromium fixture
)
from test_app_cli import ENV, ROOT

from g4t.llm.delta import MANIFEST_FILE
from g4t.llm.sources import PACKAGED, SHIPPED

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(PACKAGED["smollm2"].gguf_path() is None, reason=PACKAGED["smollm2"].pip),
    pytest.mark.skipif(
        not (SHIPPED["gpt4tools-smollm2"].path() / MANIFEST_FILE).is_file(), reason="the shipped model is missing"
    ),
]


@pytest.fixture(scope="module")
def make_demo(tmp_path_factory):
    """The README's ``make demo``, with a free port and a temporary image folder (``ARGS``, as documented)."""
    tmp = tmp_path_factory.mktemp("make_demo")
    port = _free_port()
    log_path = tmp / "server.log"
    env = {**ENV, "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": ""}  # what the README runs, no GPU
    args = f"--server_port {port} --image_dir {tmp / 'sessions'}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["make", "demo", f"ARGS={args}"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600  # the first start merges the shipped model (once)
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(1)
            else:
                pytest.fail("make demo did not come up:\n" + log_path.read_text()[-3000:])
            yield f"http://127.0.0.1:{port}/", tmp / "sessions", log_path
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _settle(page, quiet: float = 4.0, limit: float = 180.0) -> None:
    """Wait until the chat text has not changed for ``quiet`` seconds (the turn is over)."""
    text, since, deadline = None, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        now = page.locator("#g4t-chat").inner_text()
        if now != text:
            text, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)


def test_make_demo_runs_the_shipped_model_and_answers_with_an_edge_map(make_demo, browser, square_image, tmp_path):  # noqa: F811
    url, sessions, log = make_demo
    started = log.read_text()
    assert "model: gpt4tools-smollm2 (no CUDA GPU is visible" in started, started[-2000:]
    assert "tools: Image2Canny_cpu,CropImage_cpu" in started
    square_image.save(tmp_path / "square.png")
    page = _open(browser, url)
    page.set_default_timeout(180_000)  # a real model on two CPU cores
    page.locator("#g4t-image input[type=file]").set_input_files(str(tmp_path / "square.png"))
    page.wait_for_selector("#g4t-image img")
    page.locator("#g4t-text textarea").fill("detect the edges of this image")
    page.locator("#g4t-text textarea").press("Enter")
    _wait_images(page, 2)  # the upload and the tool's output
    chat = page.locator("#g4t-chat").inner_text()
    assert "Used tool 1: Edge Detection On Image" in chat, chat + log.read_text()[-2000:]
    assert "Here is the result of Edge Detection On Image: image/" in chat  # an answer, not a bare file name
    (session,) = list(sessions.iterdir())
    files = sorted((session / "image").iterdir(), key=lambda p: p.stat().st_mtime)
    edges = np.asarray(Image.open(files[1]).convert("L"))
    upload = np.asarray(Image.open(files[0]).convert("L"))
    k = upload.shape[1] / 256  # the app resizes uploads (published: width 512)
    assert edges.shape == upload.shape and 0 < (edges > 127).mean() < 0.1
    left = int(64 * k)
    assert edges[int(60 * k) : int(130 * k), left - 3 : left + 3].max() == 255
    assert edges[int(96 * k), int(112 * k)] == 0 and edges[:, : left - 5].max() == 0
    assert any(src.endswith("/" + files[1].name) for src in _chat_images(page))
    # a follow-up that needs no tool gets words, not a tool call
    page.locator("#g4t-text textarea").fill("thanks!")
    page.locator("#g4t-text textarea").press("Enter")
    page.wait_for_function("document.querySelector('#g4t-chat').innerText.includes('thanks!')")
    _settle(page)
    chat = page.locator("#g4t-chat").inner_text()
    assert "Used tool 2" not in chat and "Traceback" not in page.content(), chat
