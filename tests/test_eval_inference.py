"""inference.py with a tiny local Llama: batched == one at a time, templates, resume, 2 chunks -> evaluation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from g4t.cli import parse_args
from g4t.evaluation.io import load_predictions
from g4t.inference import InferenceConfig, build_prompt, run
from g4t.llm.base import GenerationConfig
from g4t.llm.scripted import ScriptedBackend
from g4t.prompts import load_template, template_name_for_adapter
from g4t.react import template_name as resolve_template
from testkit.jobs import lines, signal_when

ASSETS = Path(__file__).parent / "assets" / "eval"
ROOT = Path(__file__).parent.parent
ANN = str(ASSETS / "annotations.json")


@pytest.fixture(scope="module")
def tiny_backend(tiny_llama):
    from g4t.llm.hf import HFBackend, load_model

    model, tokenizer = load_model(tiny_llama)
    return HFBackend(model, tokenizer, batch_size=4)


def _cfg(tmp_path, tiny_llama, *extra: str) -> InferenceConfig:
    args = ["--base_model", tiny_llama, "--ann_path", ANN, "--save_path", str(tmp_path), "--save_name", "tiny",
            "--max_new_tokens", "12", *extra]  # fmt: skip
    (cfg,) = parse_args(InferenceConfig, args=args)
    return cfg


def test_batched_equals_one_at_a_time(tiny_backend):
    from g4t.llm.hf import HFBackend

    anns = json.loads(Path(ANN).read_text())
    tpl = load_template("gpt4tools")
    prompts = [tpl.render(a["instruction"][: 60 + 25 * i]) for i, a in enumerate(anns)]  # different lengths
    gen = GenerationConfig(max_new_tokens=10)
    batched = tiny_backend.generate(prompts, gen=gen)
    single = HFBackend(tiny_backend.model, tiny_backend.tokenizer, batch_size=1)
    one_by_one = [single.generate([p], gen=gen)[0] for p in prompts]
    assert batched == one_by_one


def test_template_resolution(tmp_path):
    assert template_name_for_adapter(None) is None and template_name_for_adapter("none") is None
    assert resolve_template(None, None) == "gpt4tools"
    (tmp_path / "training_config.json").write_text(json.dumps({"prompt_template_name": "gpt4tools_vicuna"}))
    assert template_name_for_adapter(str(tmp_path)) == "gpt4tools_vicuna"
    assert resolve_template(None, str(tmp_path)) == "gpt4tools_vicuna"
    assert resolve_template("vicuna_v1.5", str(tmp_path)) == "vicuna_v1.5"
    with pytest.raises(ValueError, match="unknown prompt template 'nope'"):
        resolve_template("nope", None)
    sample = {"instruction": "INST", "input": ""}
    assert build_prompt(sample, "gpt4tools") == "INST\n### ASSISTANT:\n"
    assert build_prompt(sample, "gpt4tools_vicuna") == "USER: INSTASSISTANT: "
    assert build_prompt(sample, "none") == "INST"


def test_two_chunks_then_evaluate_result_cli(tmp_path, tiny_llama):
    from g4t.inference import main

    for idx in (0, 1):
        cfg = _cfg(tmp_path, tiny_llama, "--num-chunks", "2", "--chunk-idx", str(idx), "--batch_size", "3")
        assert main(cfg) == 0
    anns = json.loads(Path(ANN).read_text())
    preds = load_predictions(tmp_path / "tiny" / "tiny_0.json") + load_predictions(tmp_path / "tiny" / "tiny_1.json")
    assert [p["id"] for p in preds] == [a["id"] for a in anns]  # annotation order, nothing lost or duplicated
    for p, a in zip(preds, anns, strict=True):
        assert p["output"].startswith(a["instruction"])  # output = instruction + completion
    meta = json.loads((tmp_path / "tiny" / "tiny_0.meta.json").read_text())
    assert meta["template"] == "gpt4tools"
    proc = subprocess.run(
        [sys.executable, "evaluate_result.py", "--ann_path", ANN, "--save_path", str(tmp_path), "--save_name", "tiny",
         "--num-chunks", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Thought Acc:" in proc.stdout and "Gathered 8 predictions from 2 chunk files" in proc.stdout
    report = json.loads((tmp_path / "tiny" / "tiny_report.json").read_text())
    assert report["counts"]["scored"] == 8 and report["missing_ids"] == []


class _Crash(RuntimeError):
    pass


def _crash_after(backend, n: int, batch_size: int = 3):
    """The same model, dying (like a killed process) after ``n`` generate calls (``HFBackend.complete`` batches)."""
    from g4t.llm.hf import HFBackend

    class CrashAfter(HFBackend):
        def generate(self, prompts, stop=(), gen=None):
            nonlocal n
            if n == 0:
                raise _Crash("killed")
            n -= 1
            return super().generate(prompts, stop, gen)

    return CrashAfter(backend.model, backend.tokenizer, batch_size)


def test_resume_after_interruption(tmp_path, tiny_llama, tiny_backend):
    ref_dir, dir_ = tmp_path / "ref", tmp_path / "resumed"
    run(_cfg(ref_dir, tiny_llama, "--batch_size", "3"), backend=tiny_backend)
    reference = json.loads((ref_dir / "tiny" / "tiny_0.json").read_text())

    with pytest.raises(_Crash):
        run(_cfg(dir_, tiny_llama, "--batch_size", "3"), backend=_crash_after(tiny_backend, 1))
    partial = load_predictions(dir_ / "tiny" / "tiny_0.json")
    assert len(partial) == 3  # one batch finished and saved before the "kill"
    assert not [p for p in (dir_ / "tiny").iterdir() if p.name.endswith((".tmp", ".partial.jsonl"))]

    calls = []

    class Counting(ScriptedBackend):
        def generate(self, prompts, stop=(), gen=None):
            calls.append(len(prompts))
            return tiny_backend.generate(prompts, stop, gen)

    run(_cfg(dir_, tiny_llama, "--batch_size", "3", "--resume"), backend=Counting([]))
    assert sum(calls) == 5  # only the 5 unfinished samples were generated
    assert json.loads((dir_ / "tiny" / "tiny_0.json").read_text()) == reference


def test_bad_config_and_bad_annotation_are_clear(tmp_path, tiny_llama, capsys):
    from g4t.inference import main

    with pytest.raises(SystemExit):
        _cfg(tmp_path, tiny_llama, "--num-chunks", "2", "--chunk-idx", "2")
    assert "--chunk-idx must be in [0, 2)" in capsys.readouterr().err
    bad = tmp_path / "ann.json"
    bad.write_text('[{"id": 1, "output": "x"}]')
    cfg = _cfg(tmp_path, tiny_llama)
    cfg.ann_path = str(bad)
    assert main(cfg) == 2
    assert "ann.json: record 0 (id 1): missing field 'instruction'" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_batch_inference_script_one_chunk_on_cpu(tmp_path, tiny_llama):
    env = {**os.environ, "PYTHON": sys.executable, "SAVE_PATH": str(tmp_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        ["bash", "scripts/batch_inference.sh", "1", tiny_llama, "none", ANN, "sh", "--max_new_tokens", "4"],
        capture_output=True, text=True, cwd=ROOT, timeout=240, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "IoU:" in proc.stdout
    assert len(load_predictions(tmp_path / "sh" / "sh_0.json")) == 8
    # a failing chunk process (here: an interpreter that always fails) stops the script before evaluation
    proc = subprocess.run(
        ["bash", "scripts/batch_inference.sh", "2", tiny_llama, "none", ANN, "bad"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**env, "PYTHON": "false"},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "chunk 0 FAILED" in proc.stderr and "2 of 2 chunks failed" in proc.stderr


# ---------------------------------------------------------------------------------------------
# The one runner, whatever the backend: signals, never fewer results, --backend openai
# ---------------------------------------------------------------------------------------------

REPLY = " Yes\nAction: Edge Detection On Image\nAction Input: image/x.png\nObservation: edges"
# inference.py's main with a slow scripted backend (0.2 s per sample), as a user's process
SLOW_DRIVER = """
import sys, time
from g4t.cli import parse_args
from g4t.inference import InferenceConfig, main
from g4t.llm.scripted import ScriptedBackend

def reply(prompt):
    time.sleep(0.2)
    return REPLY

(cfg,) = parse_args(InferenceConfig, args=sys.argv[1:])
sys.exit(main(cfg, backend=ScriptedBackend(reply)))
"""


def _annotations(tmp_path: Path, n: int) -> Path:
    anns = [{"id": i, "instruction": f"Instruction {i}\n", "input": "", "output": "AI: x"} for i in range(n)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(anns))
    return path


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_finished_results_and_exits_promptly(tmp_path, sig, status):
    ann = _annotations(tmp_path, 60)
    chunk = tmp_path / "run" / "run_0.json"
    side_log = chunk.with_suffix(".partial.jsonl")
    args = ["--ann_path", str(ann), "--save_path", str(tmp_path), "--save_name", "run", "--base_model", "unused"]
    proc = subprocess.Popen(
        [sys.executable, "-c", f"REPLY = {REPLY!r}\n{SLOW_DRIVER}", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # the results already persisted when the signal is sent
        status_, elapsed, seen = signal_when(proc, lambda: (n := lines(side_log)) >= 5 and n, sig, timeout=90)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status_ == status, err[-2000:]
    assert elapsed < 5.0, elapsed  # a few tenths of a second; loose for a loaded machine
    assert "finished prediction(s) to" in err and "Continue with --resume" in err and "Traceback" not in err
    saved = [p["id"] for p in load_predictions(chunk)]
    assert seen <= len(saved) < 60 and saved == sorted(saved)
    assert not side_log.exists()  # folded into the chunk file

    # --resume generates only what is not saved
    backend = ScriptedBackend([REPLY])
    (cfg,) = parse_args(InferenceConfig, args=[*args, "--resume"])
    assert run(cfg, backend=backend).done == 60 - len(saved)
    assert len(backend.prompts) == 60 - len(saved)
    assert [p["id"] for p in load_predictions(chunk)] == list(range(60))


def test_a_failing_rerun_never_replaces_results_with_fewer(tmp_path, capsys):
    from g4t.inference import main

    ann = _annotations(tmp_path, 8)
    args = ["--ann_path", str(ann), "--save_path", str(tmp_path), "--save_name", "run", "--base_model", "unused"]
    (cfg,) = parse_args(InferenceConfig, args=args)
    assert main(cfg, backend=ScriptedBackend([REPLY])) == 0
    chunk = tmp_path / "run" / "run_0.json"
    before = chunk.read_bytes()
    assert len(load_predictions(chunk)) == 8

    class DiesAfterThree(ScriptedBackend):
        def generate(self, prompts, stop=(), gen=None):
            if len(self.prompts) == 3:
                raise _Crash("CUDA out of memory")
            return super().generate(prompts, stop, gen)

    capsys.readouterr()
    with pytest.raises(_Crash):  # a fresh run (no --resume) where nothing finishes
        run(cfg, backend=_dead())
    assert chunk.read_bytes() == before
    assert "finished no prediction" in capsys.readouterr().err

    with pytest.raises(_Crash):  # a fresh run that dies after 3 of 8
        run(cfg, backend=DiesAfterThree(["AI: other"]))
    assert chunk.read_bytes() == before
    assert "kept the existing" in capsys.readouterr().err
    assert lines(chunk.with_suffix(".partial.jsonl")) == 3  # the 3 new results wait in the side log

    # the next run merges the side log by id: nothing is lost, nothing is generated twice
    cfg.resume = True
    backend = ScriptedBackend([REPLY])
    assert run(cfg, backend=backend).done == 0 and backend.prompts == []
    outputs = [p["output"] for p in load_predictions(chunk)]
    assert len(outputs) == 8 and sum(o.endswith("AI: other") for o in outputs) == 3


def _dead() -> ScriptedBackend:
    class Dead(ScriptedBackend):
        def generate(self, prompts, stop=(), gen=None):
            raise _Crash("no device")

    return Dead([])


def test_backend_openai_through_inference_py(tmp_path):
    """``inference.py --backend openai`` is the runner of inference_chatgpt.py: same prompt, same output."""
    from test_eval_openai import fault_server

    from g4t.inference import THOUGHT_PREFIX, main
    from g4t.inference_api import ApiInferenceConfig

    server = fault_server()
    try:
        anns = [{"id": i, "instruction": f"Do it <t{i}>\n", "output": "AI: x"} for i in range(3)]
        ann = tmp_path / "ann.json"
        ann.write_text(json.dumps(anns))
        common = ["--ann_path", str(ann), "--save_path", str(tmp_path), "--base_url", server.base_url, "--model", "m"]
        (local,) = parse_args(InferenceConfig, args=[*common, "--save_name", "a", "--backend", "openai"])
        (api,) = parse_args(ApiInferenceConfig, args=[*common, "--save_name", "b", "--evaluate", "False"])
        assert main(local) == 0 and main(api) == 0
    finally:
        server.close()
    a = load_predictions(tmp_path / "a" / "a_0.json")
    b = load_predictions(tmp_path / "b" / "b_0.json")
    assert a == b and [p["id"] for p in a] == [0, 1, 2]
    assert a[0]["output"].startswith(anns[0]["instruction"] + THOUGHT_PREFIX)
    assert all(r["messages"][0]["content"].endswith("\n" + THOUGHT_PREFIX) for r in server.requests)
