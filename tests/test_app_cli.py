"""``gpt4tools.py`` as users run it: --help, a model that cannot be loaded, and a real launch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "gpt4tools.py"
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PYTHONUNBUFFERED": "1",
}


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT
    )


def test_help_documents_every_option():
    from g4t.cli import make_parser
    from g4t.demo_config import DemoConfig

    out = _run("--help")
    assert out.returncode == 0, out.stderr
    published = ["--base_model", "--lora_model", "--llm_device", "--load", "--server_name", "--server-name"]
    published += ["--server_port", "--server-port", "--share", "--keep_last_n_paragraphs"]
    actions = [a for a in make_parser(DemoConfig)._actions if a.dest != "help"]
    flags = [a.option_strings[0] for a in actions]
    assert {"--temperature", "--load_in_4bit", "--openai_model", "--max_retries"} <= set(flags)  # the groups
    for flag in published + flags:
        assert flag in out.stdout, flag
    # every option has a help text (argparse prints "(default: ...)" after it)
    assert all(a.help for a in actions)
    assert out.stdout.count("(default:") == len(actions)
    assert "lmsys/vicuna-13b-v1.1" in out.stdout and "stevengrove/gpt4tools-vicuna-13b-lora" in out.stdout


def test_model_that_cannot_be_loaded_exits_2_with_advice(tmp_path):
    out = _run("--base_model", str(tmp_path / "no-such-model"), "--lora_model", "none", "--image_dir", str(tmp_path))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "no-such-model" in out.stderr and "--openai_base_url" in out.stderr and "local" in out.stderr


def test_hub_model_offline_exits_2_with_advice(tmp_path, capsys):
    """In-process ``main``: a Hub id with no network (HF_HUB_OFFLINE) and nothing cached."""
    from g4t.app import main
    from g4t.demo_config import parse_demo_args

    cfg = parse_demo_args(["--base_model", "some-org/not-downloaded", "--lora_model", "none"])
    cfg.image_dir = str(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "some-org/not-downloaded" in err and "--openai_base_url" in err and "Traceback" not in err


def test_bad_flag_exits_2_without_traceback():
    out = _run("--load", "NoSuchTool_cpu")
    assert out.returncode == 2 and "NoSuchTool" in out.stderr and "Traceback" not in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launch_with_tiny_local_models_serves_the_page(tiny_llama, tiny_blip, tmp_path):
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    args = ["--base_model", tiny_llama, "--lora_model", "none", "--llm_device", "cpu"]
    args += ["--load", "ImageCaptioning_cpu,Image2Canny_cpu", "--tool_models", f"ImageCaptioning={tiny_blip}"]
    args += ["--server_name", "127.0.0.1", "--server_port", str(port), "--image_dir", str(tmp_path / "out")]
    args += ["--max_new_tokens", "16", "--max_steps", "2"]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=tmp_path
    )
    try:
        deadline, status, body = time.monotonic() + 90, None, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status, body = r.status, r.read().decode("utf-8", "replace")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert status == 200, (tmp_path / "server.log").read_text()[-3000:]
        assert "GPT4Tools" in body
        # one real turn through the served app: the tiny model's gibberish must not break it
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert {"/submit", "/clear"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
        messages, text, image = client.predict("hello there", None, api_name="/submit")
        assert [m["role"] for m in messages] == ["user", "assistant"] and text == "" and image is None
        assert messages[1]["content"][0]["text"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
