"""inference_chatgpt.py keeps every paid reply: SIGTERM / Ctrl-C save what is finished and exit at once,
``--resume`` never pays twice, and a rerun never replaces results with fewer (same fault-injecting
server as test_eval_openai.py)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_eval_openai import api_cfg, counts, fault_server

from g4t.evaluation.io import load_predictions
from g4t.inference import main, run
from g4t.inference_api import ApiInferenceConfig
from testkit.jobs import lines, signal_when

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    s = fault_server()
    yield s
    s.close()


def _annotations(tmp_path: Path, n: int, fault: str = "") -> Path:
    anns = []
    for i in range(n):
        out = f"Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: s{i}\nObservation:\n"
        f = fault(i) if callable(fault) else fault
        anns.append({"id": i, "instruction": f"Instruction <s{i}> {f}\n", "input": "", "output": out})
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(anns))
    return path


def _cfg(tmp_path: Path, ann: Path, url: str, **kw) -> ApiInferenceConfig:
    kw = {"max_retries": 0, "timeout": 2.0, "backoff_base": 0.01, "max_concurrency": 2, **kw}
    return api_cfg(ann, tmp_path, url, **kw)


def _dead_url() -> str:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_finished_replies_and_exits_promptly(server, tmp_path, sig, status):
    ann = _annotations(tmp_path, 60, "#lag")  # 0.2 s per reply, 2 at a time: ~6 s of work
    chunk = tmp_path / "api" / "api_0.json"
    side_log = chunk.with_suffix(".partial.jsonl")
    proc = subprocess.Popen(
        [
            sys.executable, "inference_chatgpt.py", "--ann_path", str(ann), "--save_name", "api",
            "--save_path", str(tmp_path), "--base_url", server.base_url, "--model", "m", "--max_concurrency", "2",
            "--max_retries", "0", "--evaluate", "False",
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # replies already appended, and requests sent, when the signal is sent
        progress = lambda: (n := lines(side_log)) >= 6 and (n, len(server.requests))  # noqa: E731
        status_, elapsed, (seen, sent_before) = signal_when(proc, progress, sig, timeout=90)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status_ == status, err[-2000:]
    assert elapsed < 5.0, elapsed  # measured ~0.1-0.3 s; loose for a loaded machine
    assert "finished prediction(s) to" in err and "Continue with --resume" in err and "Traceback" not in err
    # only what was in flight (and what the normal flow sent before the signal landed); the queue was not sent
    assert len(server.requests) - sent_before <= 8
    saved = [p["id"] for p in load_predictions(chunk)]
    assert len(saved) >= seen and saved == sorted(saved) and len(saved) < 60
    assert not side_log.exists()  # folded into the chunk file

    # --resume asks only for what is not saved: no reply is paid twice
    server.respond.healthy = True
    cfg = _cfg(tmp_path, ann, server.base_url, resume=True, evaluate=False, max_concurrency=8)
    assert counts(run(cfg)) == (60 - len(saved), 0)
    assert all(server.attempts[f"s{i}"] == 1 for i in saved)
    assert [p["id"] for p in load_predictions(chunk)] == list(range(60))


def test_resume_folds_the_side_log_of_a_killed_run(server, tmp_path):
    # what SIGKILL leaves: a side log with a torn last line, no chunk file
    ann = _annotations(tmp_path, 6)
    chunk = tmp_path / "api" / "api_0.json"
    chunk.parent.mkdir(parents=True)
    side_log = chunk.with_suffix(".partial.jsonl")
    side_log.write_text(
        "".join(json.dumps({"id": i, "output": f"paid {i}"}) + "\n" for i in (1, 4)) + '{"id": 5, "outp'
    )
    assert counts(run(_cfg(tmp_path, ann, server.base_url, resume=True, evaluate=False))) == (4, 0)
    assert sorted(server.attempts) == ["s0", "s2", "s3", "s5"]
    preds = {p["id"]: p["output"] for p in load_predictions(chunk)}
    assert sorted(preds) == list(range(6)) and preds[1] == "paid 1" and preds[4] == "paid 4"
    assert not side_log.exists()


def test_rerun_against_a_dead_server_keeps_the_results(server, tmp_path, capsys):
    ann = _annotations(tmp_path, 8)
    cfg = _cfg(tmp_path, ann, server.base_url)
    assert main(cfg) == 0
    chunk = tmp_path / "api" / "api_0.json"
    report = tmp_path / "api" / "api_report.json"
    before, metrics = chunk.read_bytes(), json.loads(report.read_text())["published"]
    assert len(load_predictions(chunk)) == 8 and metrics["SR_act"] == 1.0
    capsys.readouterr()

    dead = _cfg(tmp_path, ann, _dead_url(), timeout=0.5)  # no --resume: a fresh run that gets nothing
    assert main(dead) == 1
    err = capsys.readouterr().err
    assert "this run finished no prediction; kept the existing" in err
    assert chunk.read_bytes() == before
    assert json.loads(report.read_text())["published"] == metrics  # evaluated on the kept file, no nan


def test_rerun_with_fewer_successes_keeps_the_file_and_merges_later(server, tmp_path, capsys):
    ann = _annotations(tmp_path, 8, lambda i: "#dead" if i % 2 else "")
    server.respond.healthy = True
    assert counts(run(_cfg(tmp_path, ann, server.base_url, evaluate=False))) == (8, 0)
    chunk = tmp_path / "api" / "api_0.json"
    before = chunk.read_bytes()
    server.respond.healthy = False  # odd ids now fail: 4 successes < the 8 in the file
    assert counts(run(_cfg(tmp_path, ann, server.base_url, evaluate=False))) == (4, 4)
    assert chunk.read_bytes() == before
    side_log = chunk.with_suffix(".partial.jsonl")
    assert "kept the existing" in capsys.readouterr().err and lines(side_log) == 4
    # the next run first merges those 4 (by id) into the file; with --resume nothing is left to ask
    n = len(server.requests)
    assert counts(run(_cfg(tmp_path, ann, server.base_url, evaluate=False, resume=True))) == (0, 0)
    assert len(server.requests) == n and not side_log.exists()
    assert [p["id"] for p in load_predictions(chunk)] == list(range(8))


def test_no_predictions_at_all_skips_evaluation(tmp_path, capsys):
    ann = _annotations(tmp_path, 3)
    assert main(_cfg(tmp_path, ann, _dead_url(), timeout=0.5)) == 1
    assert "evaluation skipped" in capsys.readouterr().err
    assert not (tmp_path / "api" / "api_report.json").exists()
    assert load_predictions(tmp_path / "api" / "api_0.json") == []  # there was nothing to keep
