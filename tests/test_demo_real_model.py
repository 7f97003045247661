"""The demo on the trained real model, in the browser: SmolLM2-135M-Instruct as ``bench/real_model.py``
trained it answers "detect the edges of this image" with a real edge map (CPU tools, offline).

Slow (a real model on the CPU): ``make test ARGS="-m slow -k real_model"``. It needs what
``bench/real_model.py`` writes: the fully fine-tuned model (``output/real_model/model``) or the LoRA
adapter (``output/real_model/adapter``, with ``--full_finetune False``), or either at ``$G4T_REAL_MODEL``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
from test_app_cli import ENV, ROOT, SCRIPT

from g4t.llm.sources import PACKAGED


def _trained() -> list[str]:
    """``gpt4tools.py`` model arguments for the bench's output: a full model folder or an adapter on smollm2."""
    found = [Path(os.environ["G4T_REAL_MODEL"])] if os.environ.get("G4T_REAL_MODEL") else []
    for path in found or [ROOT / "output/real_model/model", ROOT / "output/real_model/adapter"]:
        if (path / "adapter_config.json").is_file():
            return ["--base_model", "smollm2", "--lora_model", str(path)]
        if (path / "config.json").is_file():
            return ["--base_model", str(path), "--lora_model", "none"]
    return []


TRAINED = _trained()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(PACKAGED["smollm2"].gguf_path() is None, reason=PACKAGED["smollm2"].pip),
    pytest.mark.skipif(not TRAINED, reason="no trained model or adapter: run bench/real_model.py"),
]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_demo")
    port = _free_port()
    log_path = tmp / "server.log"
    args = [*TRAINED, "--llm_device", "cpu"]
    args += ["--load", "Image2Canny_cpu,CropImage_cpu,TextDetection_cpu", "--server_name", "127.0.0.1"]
    args += ["--server_port", str(port), "--image_dir", str(tmp / "sessions"), "--max_new_tokens", "96"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args], stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=tmp
        )
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(1)
            else:
                pytest.fail("the demo did not come up:\n" + log_path.read_text()[-3000:])
            yield f"http://127.0.0.1:{port}/", tmp / "sessions", log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_trained_smollm2_answers_detect_the_edges_with_a_real_edge_map(real_server, browser, square_image, tmp_path):  # noqa: F811
    url, sessions, log = real_server
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
    (session,) = list(sessions.iterdir())
    files = sorted((session / "image").iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(files) >= 2, (files, chat)  # the upload, then the tool output
    outputs = files[1:]
    edges = np.asarray(Image.open(outputs[0]).convert("L"))
    # a real Canny map of the (resized) upload, a black square on white: thin white outlines along its sides
    upload = np.asarray(Image.open(files[0]).convert("L"))
    k = upload.shape[1] / 256  # the app resizes uploads (published: width 512)
    assert edges.shape == upload.shape and 0 < (edges > 127).mean() < 0.1
    left = int(64 * k)
    assert edges[int(60 * k) : int(130 * k), left - 3 : left + 3].max() == 255
    assert edges[int(96 * k), int(112 * k)] == 0 and edges[:, : left - 5].max() == 0
    assert any(src.endswith("/" + outputs[0].name) for src in _chat_images(page))
    assert re.search(r"image/\w+\.png", chat) and "Traceback" not in page.content()
