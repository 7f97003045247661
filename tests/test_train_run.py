"""End-to-end training on the tiny Llama: single process, torchrun DDP (gloo, 2 processes), kill and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from train_samples import write

from g4t.train.config import CONFIG_FILE, LoraTrainConfig
from g4t.train.trainer import main

ROOT = Path(__file__).resolve().parent.parent


def _cfg(base: str, data: Path, out: Path, **kw) -> LoraTrainConfig:
    defaults = dict(
        base_model=base,
        data_path=str(data),
        output_dir=str(out),
        batch_size=4,
        micro_batch_size=2,
        num_epochs=1,
        learning_rate=1e-2,
        cutoff_len=512,
        val_set_size=0,
        lora_r=4,
        lora_alpha=8,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        warmup_steps=0,
        logging_steps=1,
        save_steps=2,
        prompt_template_name="gpt4tools_vicuna",
    )
    return LoraTrainConfig(**{**defaults, **kw})


def _changes_output(base: str, adapter: Path) -> float:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    with torch.no_grad():
        before = model(input_ids=ids).logits
        after = PeftModel.from_pretrained(model, str(adapter)).eval()(input_ids=ids).logits
    return (after - before).abs().max().item()


def _adapter(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def test_single_process_packing_with_validation(tiny_llama, tmp_path, capfd):
    data = write(tmp_path / "d.json", 12)
    out = tmp_path / "out"
    resolved = main(_cfg(tiny_llama, data, out, packing=True, val_set_size=4, eval_steps=2, max_steps=3))
    assert resolved["global_step"] == 3 and resolved["gradient_accumulation_steps"] == 2
    assert resolved["attn_implementation"] == "g4t_varlen_sdpa" and resolved["train"]["kept"] == 8
    assert resolved["logits_at_trained_positions_only"] is True
    err = capfd.readouterr().err
    assert "step 1/3" in err and "tok/s" in err and "lr " in err and "loss " in err and "eval_loss" in err
    assert "truncated at cutoff_len=512" in err
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["prompt_template_name"] == "gpt4tools_vicuna" and saved["packing"] is True
    assert json.loads((out / "checkpoint-2" / CONFIG_FILE).read_text())["prompt_template_name"] == "gpt4tools_vicuna"
    assert (out / "adapter_config.json").is_file() and _changes_output(tiny_llama, out) > 1e-4


def test_gradient_checkpointing_gives_the_same_steps(tiny_llama, tmp_path):
    data = write(tmp_path / "d.json", 8)
    runs = [
        main(_cfg(tiny_llama, data, tmp_path / f"gc{gc}", packing=True, gradient_checkpointing=gc, max_steps=2))
        for gc in (False, True)
    ]
    assert abs(runs[0]["train_loss"] - runs[1]["train_loss"]) < 1e-4
    a, b = _adapter(tmp_path / "gcFalse"), _adapter(tmp_path / "gcTrue")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_continue_training_an_adapter_and_full_finetune(tiny_llama, tiny_lora, tmp_path):
    data = write(tmp_path / "d.json", 4)
    out = tmp_path / "cont"
    main(_cfg(tiny_llama, data, out, lora_model=tiny_lora, max_steps=1, learning_rate=1e-1))
    before, after = _adapter(Path(tiny_lora)), _adapter(out)
    assert before.keys() == after.keys()  # the adapter's own config (q/v, r=4) applies
    assert any((before[k] - after[k]).abs().max() > 0 for k in before)  # and it was trained
    full = tmp_path / "full"
    main(_cfg(tiny_llama, data, full, full_finetune=True, packing=True, max_steps=1, save_steps=10))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(full)  # a plain model directory, loadable without g4t
    assert model.config._attn_implementation != "g4t_varlen_sdpa"


def test_torchrun_two_processes_gloo(tiny_llama, tmp_path):
    data = write(tmp_path / "d.json", 16)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2",
        str(ROOT / "lora_finetune.py"), "--base_model", tiny_llama, "--data_path", str(data), "--output_dir", str(out),
        "--prompt_template_name", "gpt4tools", "--num_epochs", "1", "--batch_size", "8", "--cutoff_len", "512",
        "--group_by_length", "--lora_target_modules", "[q_proj,k_proj,v_proj,o_proj]", "--lora_r", "4",
        "--micro_batch_size=2", "--val_set_size", "0", "--learning_rate", "1e-2", "--warmup_steps", "0",
        "--logging_steps", "1", "--max_steps", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world size 2" in proc.stderr and "gradient accumulation 2 -> 8 samples per step" in proc.stderr
    assert "step 2/2" in proc.stderr and "tok/s" in proc.stderr
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["prompt_template_name"] == "gpt4tools" and saved["resolved"]["world_size"] == 2
    assert _changes_output(tiny_llama, out) > 1e-4


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from g4t.cli import parse_args
from g4t.train.config import LoraTrainConfig
from g4t.train.trainer import main

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, like a preempted node

(cfg,) = parse_args(LoraTrainConfig, args=sys.argv[1:])
main(cfg, callbacks=[Kill()])
"""


def test_kill_and_resume_continues_from_the_checkpoint(tiny_llama, tmp_path, capfd):
    data = write(tmp_path / "d.json", 16)
    common = dict(max_steps=6, save_steps=2, lora_dropout=0.1, packing=True)
    # Reference: the same run without interruption.
    main(_cfg(tiny_llama, data, tmp_path / "ref", **common))
    # Killed after step 3: checkpoint-2 is the last one on disk.
    out = tmp_path / "run"
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER.format(kill_at=3)))
    argv = [
        "--base_model", tiny_llama, "--data_path", str(data), "--output_dir", str(out), "--batch_size", "4",
        "--micro_batch_size", "2", "--num_epochs", "1", "--learning_rate", "1e-2", "--cutoff_len", "512",
        "--val_set_size", "0", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj,k_proj,v_proj,o_proj",
        "--warmup_steps", "0", "--logging_steps", "1", "--prompt_template_name", "gpt4tools_vicuna",
        "--max_steps", "6", "--save_steps", "2", "--lora_dropout", "0.1", "--packing",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), *argv], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file() and not (out / "checkpoint-4").exists()
    assert not (out / "adapter_model.safetensors").exists()
    capfd.readouterr()
    resolved = main(_cfg(tiny_llama, data, out, resume_from_checkpoint="last", **common))
    err = capfd.readouterr().err
    assert "resuming from" in err and "checkpoint-2" in err and "step 3/6" in err and "step 1/6" not in err
    assert resolved["global_step"] == 6
    ref, resumed = _adapter(tmp_path / "ref"), _adapter(out)
    for key in ref:  # optimizer, scheduler, RNG (dropout) and data position all restored
        torch.testing.assert_close(resumed[key], ref[key], atol=1e-6, rtol=1e-5, msg=key)


def test_resume_errors(tiny_llama, tmp_path):
    from g4t.train.config import TrainError
    from g4t.train.trainer import resolve_resume

    assert resolve_resume("last", str(tmp_path / "none")) == (None, False)  # nothing yet: fresh start
    with pytest.raises(TrainError, match="directory not found"):
        resolve_resume(str(tmp_path / "missing"), str(tmp_path))
    with pytest.raises(TrainError, match="neither a checkpoint"):
        resolve_resume(str(tmp_path), str(tmp_path))
