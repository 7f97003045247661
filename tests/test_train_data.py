"""Data loading and validation, the published CLI, and clear errors for bad input / missing hardware."""

from __future__ import annotations

import json

import pytest
from train_samples import records, write

import lora_finetune
from g4t.data.io import DataError
from g4t.train.config import LoraTrainConfig
from g4t.train.data import load_records, split_records

PUBLISHED = (
    "--base_model {base} --data_path gpt4tools_71k.json --output_dir output/gpt4tools --prompt_template_name "
    "gpt4tools --num_epochs 6 --batch_size 512 --cutoff_len 2048 --group_by_length --lora_target_modules "
    "[q_proj,k_proj,v_proj,o_proj] --lora_r 16 --micro_batch_size=8"
)


def test_json_and_jsonl_load(tmp_path):
    recs = records(5)
    (tmp_path / "a.json").write_text(json.dumps(recs))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    (tmp_path / "c.json").write_text("\n".join(json.dumps(r) for r in recs))  # JSON Lines named .json
    for name in ("a.json", "b.jsonl", "c.json"):
        assert load_records(tmp_path / name) == recs
    # extra fields are ignored, missing / null input means ""
    (tmp_path / "d.json").write_text(json.dumps([{"instruction": "i", "output": "o", "id": 3, "input": None}]))
    assert load_records(tmp_path / "d.json") == [{"instruction": "i", "input": "", "output": "o"}]


def test_malformed_records_name_index_and_field(tmp_path):
    bad = records(4)
    del bad[1]["output"]
    bad[2]["instruction"] = 7
    bad[3]["input"] = ["x"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([*bad, "not a record"]))
    with pytest.raises(DataError) as e:
        load_records(path)
    msg = str(e.value)
    assert "4 problem(s)" in msg
    assert "record 1: missing field 'output'" in msg
    assert "record 2: field 'instruction' must be a string, got int" in msg
    assert "record 3: field 'input' must be a string, got list" in msg
    assert "record 4: expected an object" in msg


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(records(1)[0]) + "\n\n" + json.dumps({"instruction": "x"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:4: invalid JSON"):
        load_records(path)
    path.write_text(json.dumps(records(1)[0]) + "\n\n" + json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl: record 1 \(line 3\): missing field 'output'"):
        load_records(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "x.json: is empty"),
        ('{"instruction": "x", "output": ', "invalid JSON at line 1"),
        ('{"a": 1}', "expected a JSON list of records, got a dict"),
        ("[]", "no records"),
    ],
)
def test_file_level_errors(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_records(path)
    with pytest.raises(DataError, match="missing.json: no such file"):
        load_records(tmp_path / "missing.json")


def test_split_is_seeded_and_checked():
    recs = records(10)
    train, val = split_records(recs, 3, seed=42)
    assert len(train) == 7 and len(val) == 3 and split_records(recs, 3, seed=42) == (train, val)
    assert sorted(map(json.dumps, train + val)) == sorted(map(json.dumps, recs))
    assert split_records(recs, 0) == (recs, [])
    with pytest.raises(DataError, match="leaves no training data"):
        split_records(recs, 10)


def test_published_command_parses():
    from g4t.cli import parse_args

    (cfg,) = parse_args(LoraTrainConfig, args=PUBLISHED.format(base="vicuna").split())
    assert cfg.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (cfg.micro_batch_size, cfg.batch_size, cfg.num_epochs, cfg.cutoff_len, cfg.lora_r) == (8, 512, 6, 2048, 16)
    assert cfg.group_by_length and cfg.prompt_template_name == "gpt4tools" and cfg.val_set_size == 2000
    assert not cfg.train_on_inputs and cfg.lora_alpha == 16 and cfg.learning_rate == 3e-4
    (cfg,) = parse_args(LoraTrainConfig, args=["--base_model", "m", "--resume_from_checkpoint", "True"])
    assert cfg.resume_from_checkpoint == "last"
    (cfg,) = parse_args(LoraTrainConfig, args=["--base_model", "m", "--train_on_inputs", "--report_to", "none"])
    assert cfg.train_on_inputs and cfg.reporters == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base_model", "m", "--batch_size", "10", "--micro_batch_size", "4"], "multiple of --micro_batch_size"),
        (["--base_model", "m", "--prompt_template_name", "alpaca"], "invalid choice"),
        (["--base_model", "m", "--load_in_8bit", "--load_in_4bit"], "at most one"),
        (["--base_model", "m", "--report_to", "comet"], "--report_to: unknown"),
        (["--data_path", "x.json"], "--base_model"),
    ],
)
def test_bad_flags_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        lora_finetune.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _run(argv, capsys) -> tuple[int, str]:
    code = lora_finetune.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_malformed_file_through_the_cli(tiny_llama, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"instruction": "x", "output": 3}]))
    code, err = _run(
        ["--base_model", tiny_llama, "--data_path", str(path), "--output_dir", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "record 0: field 'output' must be a string, got int" in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA error")
@pytest.mark.parametrize("flag", ["--load_in_4bit", "--load_in_8bit"])
def test_quantised_training_needs_cuda(tiny_llama, tmp_path, capsys, flag):
    data = write(tmp_path / "d.json", 4)
    code, err = _run(["--base_model", tiny_llama, "--data_path", str(data), "--val_set_size", "0", flag], capsys)
    assert code == 2 and f"{flag} (QLoRA / 8-bit training) needs a CUDA GPU" in err


def test_missing_model_and_deepspeed_errors(tiny_llama, tmp_path, capsys):
    data = write(tmp_path / "d.json", 4)
    code, err = _run(["--base_model", str(tmp_path / "nope"), "--data_path", str(data), "--val_set_size", "0"], capsys)
    assert code == 2 and "could not load the tokenizer" in err
    code, err = _run(["--base_model", tiny_llama, "--data_path", str(data), "--deepspeed", "missing.json"], capsys)
    assert code == 2 and "config file 'missing.json' not found" in err


def test_zero2_config_ships():
    from pathlib import Path

    cfg = json.loads((Path(lora_finetune.__file__).parent / "configs" / "zero2.json").read_text())
    assert cfg["zero_optimization"]["stage"] == 2 and cfg["gradient_accumulation_steps"] == "auto"


def test_template_choices_and_config_file_name_have_one_source():
    import typing

    from g4t.prompts import TRAINING_CONFIG_FILE, available_templates
    from g4t.train.config import CONFIG_FILE, TemplateName

    assert list(typing.get_args(TemplateName)) == available_templates()  # read from templates/, plus "chat"
    assert {"gpt4tools", "gpt4tools_vicuna", "vicuna_v1.1", "vicuna_v1.5", "chat"} <= set(available_templates())
    assert CONFIG_FILE == TRAINING_CONFIG_FILE == "training_config.json"
