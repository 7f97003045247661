"""get_instruction against a real local teacher server on 127.0.0.1: faults, failures, resume after kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from g4t.data.collect import CollectConfig, collect, failed_path
from g4t.data.io import DataError, read_jsonl
from g4t.data.teacher import teacher_prompt
from g4t.settings import OpenAIConnection
from testkit.teacher_server import fake_reply, teacher_server

REPO = Path(__file__).resolve().parents[1]


def _captions(tmp: Path, n: int) -> Path:
    path = tmp / "captions.json"
    path.write_text(
        json.dumps([{"file_name": f"{i:012d}.jpg", "caption": f"Picture {i}: a dog on a bench."} for i in range(n)])
    )
    return path


def _faults(caption: str):
    i = int(caption.split()[1].rstrip(":"))
    return {
        1: ("429", 2),  # rate limited twice, then fine
        2: ("500", 1),
        3: ("malformed", 1),
        4: ("slow", 1),  # longer than the client timeout once
        5: ("500", 3),  # fails every attempt of the first run (max_retries=2), succeeds on resume
        6: ("500", -1),  # always fails
    }.get(i % 10 if i < 10 else -1)


def _cfg(tmp: Path, url: str, **kw) -> CollectConfig:
    base = dict(
        caption_path=str(tmp / "captions.json"),
        instruction_path=str(tmp / "out.jsonl"),
        openai=OpenAIConnection(
            openai_base_url=url,
            openai_model="gpt-3.5-turbo",
            chat_role="system",
            max_concurrency=4,
            max_retries=2,
            timeout=1.0,
            backoff_base=0.01,
            backoff_max=0.05,
        ),
        progress=False,
    )
    base.update(kw)
    return CollectConfig(**base)


def test_every_caption_ends_with_a_reply_or_a_recorded_failure(tmp_path):
    _captions(tmp_path, 14)
    with teacher_server(latency=0.01, faults=_faults, slow_seconds=2.5) as server:
        s = collect(_cfg(tmp_path, server.base_url))
        ok = read_jsonl(tmp_path / "out.jsonl")
        failed = read_jsonl(failed_path(tmp_path / "out.jsonl"))
        assert (s["ok"], s["failed"]) == (12, 2) and s["retries"] >= 6
        ids = [r["id"] for r in ok] + [r["id"] for r in failed]
        assert len(ids) == len(set(ids)) == 14  # every caption exactly once
        assert {r["file_name"] for r in failed} == {"000000000005.jpg", "000000000006.jpg"}
        assert all("HTTP 500" in r["error"] for r in failed)
        by_name = {r["file_name"]: r for r in ok}
        rec = by_name["000000000001.jpg"]
        assert rec["attempts"] == 3 and rec["model"] == "gpt-3.5-turbo" and rec["usage"]["completion_tokens"] > 0
        assert rec["instructions"] == fake_reply(teacher_prompt(rec["caption"]))
        assert by_name["000000000004.jpg"]["attempts"] == 2  # the slow answer timed out once
        # resume: answered captions are skipped, failures are retried; #5 now succeeds, #6 fails again
        s2 = collect(_cfg(tmp_path, server.base_url))
        assert (s2["already_done"], s2["asked"], s2["ok"], s2["failed"]) == (12, 2, 1, 1)
        ok = read_jsonl(tmp_path / "out.jsonl")
        assert len(ok) == len({r["id"] for r in ok}) == 13
        assert [r["file_name"] for r in read_jsonl(failed_path(tmp_path / "out.jsonl"))] == ["000000000006.jpg"]


def test_limit_and_tools(tmp_path):
    _captions(tmp_path, 6)
    with teacher_server() as server:
        s = collect(_cfg(tmp_path, server.base_url, limit=3, tools=["Edit Image Using Text"]))
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert s["ok"] == 3 and len(recs) == 3
    assert '\n27. "Use edit image using text for ' in recs[0]["instructions"]


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path):
    _captions(tmp_path, 20)
    out = tmp_path / "out.jsonl"
    with teacher_server(latency=0.1) as server:
        cmd = [
            sys.executable,
            "scripts/get_instruction.py",
            "--caption-path",
            str(tmp_path / "captions.json"),
            "--instruction-path",
            str(out),
            "--base_url",
            server.base_url,
            "--concurrency",
            "2",
            "--progress",
            "False",
        ]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = out.read_text().count("\n")
        assert 4 <= done_before < 20
        with open(out, "a") as f:  # what a writer killed mid-line leaves behind
            f.write('{"id": "torn", "file_na')
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{done_before} already done" in r.stdout
    recs = read_jsonl(out)
    assert len(recs) == 20 and len({r["id"] for r in recs}) == 20
    assert {r["file_name"] for r in recs} == {f"{i:012d}.jpg" for i in range(20)}


def test_bad_caption_file_is_named(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text('{"file_name": "a.jpg", "caption": "x"}\n{"file_name": "b.jpg"}\n')
    with pytest.raises(DataError, match=r"captions.jsonl:2: missing field 'caption'"):
        collect(CollectConfig(caption_path=str(path), instruction_path=str(tmp_path / "o.jsonl"), progress=False))
    r = subprocess.run(
        [
            sys.executable,
            "scripts/get_instruction.py",
            "--caption_path",
            str(path),
            "--instruction_path",
            str(tmp_path / "o.jsonl"),
            "--concurrency",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--max_concurrency must be >= 1" in r.stderr
