"""End to end: generated records train a tiny model (lora_finetune.py, 1 step) and the generated val
split runs through inference.py + evaluate_result.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from g4t.data.annotate import AnnotateConfig, run
from g4t.data.teacher import teacher_prompt
from testkit.teacher_server import fake_reply

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_DISABLED="true")
    r = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_generated_records_train_and_evaluate(tmp_path, tiny_llama):
    replies = tmp_path / "instructions.jsonl"
    with open(replies, "w") as f:
        for i, cap in enumerate(
            ["A dog on a red bench.", "A cat on a sofa.", "A bus on a street.", "A kite in a park."]
        ):
            f.write(
                json.dumps(
                    {
                        "id": str(i),
                        "file_name": f"{i}.jpg",
                        "caption": cap,
                        "instructions": fake_reply(teacher_prompt(cap)),
                    }
                )
                + "\n"
            )
    run(
        AnnotateConfig(
            input_path=str(replies),
            output_path=str(tmp_path / "train.json"),
            complement=True,
            complement_mode="random",
            max_num_samples=8,
            val_ratio=0.25,
            seed=3,
        )
    )
    val = json.loads((tmp_path / "train_val_seen.json").read_text())[:3]
    (tmp_path / "val3.json").write_text(json.dumps(val))

    _run(
        [
            "lora_finetune.py",
            "--base_model",
            tiny_llama,
            "--data_path",
            str(tmp_path / "train.json"),
            "--output_dir",
            str(tmp_path / "lora"),
            "--batch_size",
            "2",
            "--micro_batch_size",
            "2",
            "--max_steps",
            "1",
            "--val_set_size",
            "0",
            "--cutoff_len",
            "1024",
            "--warmup_steps",
            "0",
            "--lora_r",
            "4",
            "--save_steps",
            "1",
        ]
    )
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    _run(
        [
            "inference.py",
            "--base_model",
            tiny_llama,
            "--lora_model",
            str(tmp_path / "lora"),
            "--ann_path",
            str(tmp_path / "val3.json"),
            "--save_name",
            "run",
            "--save_path",
            str(tmp_path / "pred"),
            "--max_new_tokens",
            "4",
            "--batch_size",
            "3",
            "--llm_device",
            "cpu",
        ]
    )
    preds = json.loads((tmp_path / "pred" / "run" / "run_0.json").read_text())
    assert sorted(p["id"] for p in preds) == sorted(r["id"] for r in val)
    r = _run(
        [
            "evaluate_result.py",
            "--ann_path",
            str(tmp_path / "val3.json"),
            "--save_name",
            "run",
            "--save_path",
            str(tmp_path / "pred"),
        ]
    )
    assert "SR" in r.stdout, r.stdout
