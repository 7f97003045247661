"""The dtype policy (``g4t.precision``) and bf16 training on the CPU against fp32."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_run import _cfg
from train_samples import write

from g4t.precision import cpu_has_bf16, resolve_dtype
from g4t.train.config import CONFIG_FILE
from g4t.train.trainer import main


@pytest.fixture
def cpu_bf16(monkeypatch):
    def set_units(value: str):
        monkeypatch.setenv("G4T_CPU_BF16", value)
        cpu_has_bf16.cache_clear()

    yield set_units
    cpu_has_bf16.cache_clear()


def test_both_spellings_and_auto_follows_the_cpu(cpu_bf16):
    assert resolve_dtype("bf16") is resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("fp32", "cuda:0") is resolve_dtype("float32") is torch.float32
    assert resolve_dtype("fp16") is torch.float16
    cpu_bf16("1")
    assert resolve_dtype("auto", "cpu") is torch.bfloat16
    cpu_bf16("0")
    assert resolve_dtype("auto", "cpu") is torch.float32
    with pytest.raises(ValueError, match="int8"):
        resolve_dtype("int8")


def test_detection_reads_the_cpu_when_not_forced(cpu_bf16):
    cpu_bf16("")
    flags = open("/proc/cpuinfo").read().split()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        assert cpu_has_bf16()
    elif not (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()):
        assert not cpu_has_bf16()


def _losses(cfg) -> list[float]:
    from transformers import TrainerCallback

    seen: list[float] = []

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                seen.append(logs["loss"])

    main(cfg, callbacks=[Record()])
    return seen


def test_bf16_loss_curve_stays_within_tolerance_of_fp32(tiny_llama, tmp_path, cpu_bf16, capfd):
    """Autocast bf16 with fp32 master weights: every logged loss of a 6-step run within 1 % of fp32."""
    data = write(tmp_path / "d.json", 24)
    runs = {}
    for dtype in ("fp32", "auto"):
        cpu_bf16("1")  # "auto" on a CPU with bf16 units
        out = tmp_path / dtype
        runs[dtype] = _losses(_cfg(tiny_llama, data, out, dtype=dtype, packing=True, max_steps=6, learning_rate=3e-3))
    saved = json.loads((tmp_path / "auto" / CONFIG_FILE).read_text())
    assert saved["dtype"] == "auto" and saved["resolved"]["compute_dtype"] == "bfloat16"
    assert json.loads((tmp_path / "fp32" / CONFIG_FILE).read_text())["resolved"]["compute_dtype"] == "float32"
    assert "compute dtype bfloat16 (--dtype auto; CPU bf16 units: yes)" in capfd.readouterr().err
    assert len(runs["fp32"]) == len(runs["auto"]) == 6
    for step, (a, b) in enumerate(zip(runs["fp32"], runs["auto"], strict=True), 1):
        assert abs(a - b) <= 0.01 * a, (step, runs)
    assert runs["auto"][-1] < runs["auto"][0]  # and it learns
