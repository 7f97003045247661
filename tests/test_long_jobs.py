"""Long jobs under SIGTERM / SIGINT: the real CLIs in subprocesses, against a local fake teacher/judge
and a tiny model. Each must exit 143 / 130 within seconds with its finished work on disk, and a rerun
must finish the job without redoing that work and without replacing a file with fewer results."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from train_samples import write

from g4t.data.io import read_jsonl
from testkit.jobs import lines, signal_when
from testkit.teacher_server import teacher_server

REPO = Path(__file__).resolve().parent.parent
MB_SAMPLE = Path(__file__).parent / "assets" / "magicbrush_dev_sample"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
EXIT_S = 15.0  # generous on a loaded 2-core box; the jobs themselves stop within a second or two


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ get_instruction.py


def test_get_instruction_sigterm_keeps_answers_and_the_rerun_asks_only_the_rest(tmp_path):
    from g4t.data.collect import CollectConfig, main
    from g4t.settings import OpenAIConnection

    captions = [{"file_name": f"{i:012d}.jpg", "caption": f"A photo number {i} of a dog."} for i in range(30)]
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    out = tmp_path / "out.jsonl"
    args = dict(caption_path=str(tmp_path / "captions.json"), instruction_path=str(out))
    with teacher_server(latency=0.3) as server:
        cmd = [sys.executable, "scripts/get_instruction.py", "--progress", "False", "--base_url", server.base_url]
        cmd += ["--concurrency", "2"]
        cmd += [f"--{k}={v}" for k, v in args.items()]
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rc, seconds, _ = signal_when(proc, lambda: lines(out) >= 3, signal.SIGTERM)
        err = proc.stderr.read()
        assert rc == 143 and seconds < EXIT_S, err
        assert "interrupted" in err and "rerun the same command" in err
        first = out.read_bytes()
        done = read_jsonl(out)
        assert 3 <= len(done) < 30 and first.endswith(b"\n")
        server.attempts.clear()
        assert (
            main(
                CollectConfig(
                    **args,
                    openai=OpenAIConnection(openai_base_url=server.base_url, openai_model="m", max_concurrency=2),
                    progress=False,
                )
            )
            == 0
        )
        assert sum(server.attempts.values()) == 30 - len(done)  # nothing finished was asked again
    assert out.read_bytes().startswith(first)  # appended to, never rewritten
    recs = read_jsonl(out)
    assert len(recs) == 30 and len({r["id"] for r in recs}) == 30


# ----------------------------------------------------------------------- magicbrush_to_instructions.py


def _big_magicbrush(folder: Path, copies: int) -> Path:
    sessions = json.loads((MB_SAMPLE / "edit_sessions.json").read_text())
    captions = json.loads((MB_SAMPLE / "global_descriptions.json").read_text())
    folder.mkdir()
    big_s = {f"{sid}x{k}": turns for k in range(copies) for sid, turns in sessions.items()}
    big_c = {f"{sid}x{k}": captions[sid] for k in range(copies) for sid in sessions}
    (folder / "edit_sessions.json").write_text(json.dumps(big_s))
    (folder / "global_descriptions.json").write_text(json.dumps(big_c))
    return folder


def test_magicbrush_sigint_leaves_the_earlier_output_and_the_rerun_writes_it(tmp_path):
    from g4t.data.magicbrush import MagicBrushConfig, main

    out = tmp_path / "mb.json"
    assert main(MagicBrushConfig(data_dir=str(MB_SAMPLE), output_path=str(out))) == 0  # an earlier run: 88 records
    before = out.read_bytes()
    big = _big_magicbrush(tmp_path / "big", 300)  # 6,000 sessions: seconds of conversion
    cmd = [sys.executable, "scripts/magicbrush_to_instructions.py", "--data_dir", str(big), "--output_path", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = []
    threading.Thread(target=lambda: started.append(proc.stderr.readline()), daemon=True).start()
    rc, seconds, _ = signal_when(proc, lambda: started, signal.SIGINT)
    assert "converting" in started[0]
    err = proc.stderr.read()
    assert rc == 130 and seconds < EXIT_S, err
    assert "left as it was" in err
    assert out.read_bytes() == before  # never replaced by a partial conversion
    assert main(MagicBrushConfig(data_dir=str(big), output_path=str(out))) == 0
    assert len(json.loads(out.read_text())) == 300 * 88


def test_magicbrush_errors_go_to_stderr(tmp_path):
    (tmp_path / "edit_sessions.json").write_text("{}")
    (tmp_path / "global_descriptions.json").write_text("{}")
    out = tmp_path / "mb.json"
    out.write_text("[1]")
    cmd = [sys.executable, "scripts/magicbrush_to_instructions.py", "--data_dir", str(tmp_path), "--output_path"]
    r = subprocess.run([*cmd, str(out)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().endswith("edit_sessions.json: no edit sessions (nothing to convert)")
    assert len(r.stderr.strip().splitlines()) == 2  # the "converting" line and one error line
    assert out.read_text() == "[1]"


# ------------------------------------------------------------------------------------ lora_finetune.py

SLOW_STEPS = """
import os, runpy, sys, time
from transformers import TrainerCallback
import g4t.train.trainer as trainer

class Slow(TrainerCallback):  # a tiny model trains in milliseconds: make each step last long enough to signal
    def on_step_end(self, args, state, control, **kw):
        time.sleep(0.4)

_main = trainer.main
trainer.main = lambda cfg, callbacks=(): _main(cfg, callbacks=[Slow(), *callbacks])
sys.argv = ["lora_finetune.py", *sys.argv[1:]]
runpy.run_path(os.path.join({repo!r}, "lora_finetune.py"), run_name="__main__")
"""


@pytest.mark.slow  # ~30 s alone (80 s on a busy box): a subprocess with torch + three in-process runs
def test_lora_finetune_sigterm_saves_a_checkpoint_and_the_rerun_resumes(tiny_llama, tmp_path, capfd):
    data = write(tmp_path / "d.json", 16)
    out = tmp_path / "run"
    argv = [
        "--base_model", tiny_llama, "--data_path", str(data), "--output_dir", str(out), "--batch_size", "4",
        "--micro_batch_size", "2", "--num_epochs", "1", "--learning_rate", "1e-2", "--cutoff_len", "512",
        "--val_set_size", "0", "--lora_r", "4", "--lora_target_modules", "q_proj,v_proj", "--warmup_steps", "0",
        "--logging_steps", "1", "--prompt_template_name", "gpt4tools_vicuna", "--max_steps", "8", "--save_steps", "100",
    ]  # fmt: skip
    script = tmp_path / "slow_steps.py"
    script.write_text(SLOW_STEPS.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), *argv], env=ENV, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    rc, seconds, _ = signal_when(proc, lambda: any("step 2/8" in line for line in log), signal.SIGTERM)
    time.sleep(0.2)  # let the reader thread take the last lines
    err = "".join(log)
    assert rc == 143 and seconds < EXIT_S, err
    step = int(err.split("stopped after step ")[1].split("/")[0])
    assert 2 <= step < 8 and "rerun the same command to resume" in err
    ckpt = out / f"checkpoint-{step}"
    assert (ckpt / "trainer_state.json").is_file() and (ckpt / "optimizer.pt").is_file()
    assert (ckpt / "scheduler.pt").is_file() and (ckpt / "adapter_model.safetensors").is_file()
    assert not (out / "adapter_model.safetensors").exists()  # an interrupted run is no finished adapter

    cli = _load_script(REPO / "lora_finetune.py")
    capfd.readouterr()
    assert cli.main(argv) == 0  # the same command: resumes on its own
    err = capfd.readouterr().err
    assert f"holds checkpoint-{step} of this configuration: resuming it" in err
    assert f"step {step + 1}/8" in err and "step 1/8" not in err and "step 8/8" in err
    adapter = (out / "adapter_model.safetensors").read_bytes()
    assert cli.main(argv) == 0  # finished: nothing to do, nothing rewritten
    assert "nothing to do" in capfd.readouterr().err
    assert cli.main([*argv, "--lora_r", "8"]) == 2  # another configuration may not overwrite it
    assert "holds the finished weights of another configuration (--lora_r 4 -> 8)" in capfd.readouterr().err
    assert (out / "adapter_model.safetensors").read_bytes() == adapter
    assert json.loads((out / "training_config.json").read_text())["resolved"]["global_step"] == 8


# ------------------------------------------------------------------------------------- select_data.py


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from g4t.data.annotate import AnnotateConfig
    from g4t.data.annotate import run as annotate
    from g4t.data.offline_teacher import write_replies

    d = tmp_path_factory.mktemp("pool")
    captions = [{"file_name": f"{i}.png", "caption": f"A dog number {i} on a red sofa."} for i in range(6)]
    write_replies(captions, d / "replies.jsonl", tools_per_caption=8, seed=0)
    annotate(
        AnnotateConfig(input_path=str(d / "replies.jsonl"), output_path=str(d / "train.json"), complement=True, seed=0)
    )
    return d / "train.json"


@pytest.mark.slow  # ~40 s alone (95 s on a busy box): the rerun embeds the pool with the bundled MiniLM
def test_select_data_sigterm_keeps_judge_scores_and_the_rerun_asks_only_the_rest(pool, tmp_path):
    from g4t.selection.pipeline import SelectDataConfig, run
    from g4t.selection.samples import sample_hash
    from g4t.settings import OpenAIConnection

    n = len({sample_hash(r) for r in json.loads(pool.read_text())})
    cache = tmp_path / "cache"
    with teacher_server(latency=1.0, reply=lambda prompt: "73\nfine") as judge:
        args = dict(
            data_path=str(pool), output_path=str(tmp_path / "sel.json"), budget=4, labels="none",
            indicators="judge", cache_dir=str(cache), n_clusters=2,
        )  # fmt: skip
        server = dict(openai_model="judge", openai_base_url=judge.base_url)
        cmd = [sys.executable, "scripts/select_data.py", *[f"--{k}={v}" for k, v in (args | server).items()]]
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def scored() -> int:
            return sum(lines(p) for p in cache.glob("judge-*.jsonl"))

        rc, seconds, _ = signal_when(proc, lambda: scored() >= 8, signal.SIGTERM)
        err = proc.stderr.read()
        assert rc == 143 and seconds < EXIT_S, err
        assert "finished stages are saved" in err
        done = scored()
        assert 8 <= done < n and not (tmp_path / "sel.json").exists()
        judge.attempts.clear()
        result = run(SelectDataConfig(**args, judge=OpenAIConnection(**server)), log=lambda *_: None)
        assert sum(judge.attempts.values()) == n - done  # the cached scores were not asked again
    assert len(result.selected) == 4 and scored() == n
    assert len(json.loads((tmp_path / "sel.json").read_text())) == 4


@pytest.mark.slow  # a lora_finetune.py subprocess
def test_select_data_forwards_the_signal_to_lora_finetune(pool, tiny_llama, tmp_path):
    """A signal during the label stage reaches the running lora_finetune.py, which saves a checkpoint."""
    from g4t.interrupts import Interrupted, signals_raise_interrupted
    from g4t.selection.labels import SubprocessLabeler, label_subsets

    records = json.loads(pool.read_text())[:4]
    labeler = SubprocessLabeler(
        tiny_llama,
        str(pool),
        str(tmp_path / "work"),
        [
            "--max_steps",
            "100000",
            "--micro_batch_size",
            "1",
            "--batch_size",
            "1",
            "--cutoff_len",
            "1024",
            "--logging_steps",
            "1",
        ],
        env={"OMP_NUM_THREADS": "1"},
    )
    train_log = []

    def send_when_training() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            logs = list((tmp_path / "work").glob("*/train.log"))
            if logs and "step 2/" in logs[0].read_text():
                train_log.append(logs[0])
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    threading.Thread(target=send_when_training, daemon=True).start()
    with pytest.raises(Interrupted), signals_raise_interrupted():
        label_subsets(records, [[0, 1, 2, 3]], labeler, tmp_path / "work" / "labels.json", log=lambda *_: None)
    text = train_log[0].read_text()
    assert "SIGTERM: stopped after step" in text and "checkpoint saved" in text
    assert list((train_log[0].parent / "model").glob("checkpoint-*/trainer_state.json"))
    assert not (tmp_path / "work" / "labels.json").exists()
