"""One settings vocabulary: every script spells a shared option the same way, with the same help, and
accepts every published or earlier spelling as an alias (table-driven over all the CLIs)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from g4t.cli import make_parser, parse_args
from g4t.data.collect import CollectConfig
from g4t.demo_config import DemoConfig
from g4t.inference import InferenceConfig
from g4t.inference_api import ApiInferenceConfig
from g4t.selection.pipeline import SelectDataConfig
from g4t.train.config import LoraTrainConfig

ROOT = Path(__file__).resolve().parent.parent

# script -> (config class, the arguments it requires)
SCRIPTS = {
    "gpt4tools.py": (DemoConfig, []),
    "inference.py": (InferenceConfig, ["--ann_path", "a.json", "--save_name", "x", "--base_model", "m"]),
    "inference_chatgpt.py": (ApiInferenceConfig, ["--ann_path", "a.json", "--save_name", "x"]),
    "lora_finetune.py": (LoraTrainConfig, ["--base_model", "m"]),
    "scripts/get_instruction.py": (CollectConfig, ["--caption_path", "c.json", "--instruction_path", "o.jsonl"]),
    "scripts/select_data.py": (SelectDataConfig, ["--data_path", "d.json"]),
}
LLM = ("gpt4tools.py", "inference.py", "inference_chatgpt.py")
ALL = (*LLM, "lora_finetune.py")
RUNNERS = ("inference.py", "inference_chatgpt.py")
SERVER = (
    *LLM,
    "scripts/get_instruction.py",
    "scripts/select_data.py",
)  # scripts with the OpenAI-compatible connection group

# (canonical flag, accepted spelling, value or None for a boolean switch, scripts)
ALIASES = [
    ("--load_in_8bit", "--load_8bit", None, ALL),
    ("--load_in_8bit", "--load-in-8bit", None, ALL),
    ("--load_in_4bit", "--load-in-4bit", None, ALL),
    ("--base_model", "--base-model", "org/other", ALL),
    ("--lora_model", "--lora-model", "adapter", ALL),
    ("--llm_device", "--llm-device", "cuda:1", LLM),
    ("--merge_lora", "--merge-lora", None, LLM),
    ("--openai_base_url", "--base_url", "http://127.0.0.1:9/v1", SERVER),
    ("--openai_model", "--model", "served", SERVER),
    ("--openai_mode", "--mode", "completions", SERVER),
    ("--max_concurrency", "--concurrency", "3", SERVER),
    ("--max_concurrency", "--max-concurrency", "3", SERVER),
    ("--max_new_tokens", "--max-new-tokens", "7", LLM),
    ("--do_sample", "--do-sample", None, LLM),
    ("--num_chunks", "--num-chunks", "4", RUNNERS),
    ("--chunk_idx", "--chunk-idx", "1 --num_chunks 2", RUNNERS),
    ("--save_path", "--save-path", "elsewhere", RUNNERS),
    ("--keep_last_n", "--keep_last_n_paragraphs", "1", ("gpt4tools.py",)),
    ("--server_name", "--server-name", "0.0.0.0", ("gpt4tools.py",)),
    ("--server_port", "--server-port", "7000", ("gpt4tools.py",)),
]
# dtype: both spellings everywhere, the same precision
DTYPES = [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32")]
# options every LLM script shares, with the same help text
SHARED = [
    "--base_model", "--lora_model", "--llm_device", "--dtype", "--load_in_8bit", "--load_in_4bit", "--merge_lora",
    "--openai_base_url", "--openai_model", "--openai_mode", "--chat_role", "--api_key_env", "--max_concurrency",
    "--max_retries", "--timeout", "--backoff_base", "--backoff_max",
    "--temperature", "--top_p", "--top_k", "--num_beams", "--max_new_tokens", "--do_sample",
]  # fmt: skip


def _parse(script: str, *argv: str):
    cls, required = SCRIPTS[script]
    extra = ["--openai_model", "m"] if "--openai_base_url" in argv or "--base_url" in argv else []
    (cfg,) = parse_args(cls, args=[*required, *extra, *argv])
    return cfg


@pytest.mark.parametrize(
    ("script", "canonical", "alias", "value"),
    [(script, c, a, v) for c, a, v, scripts in ALIASES for script in scripts],
)
def test_every_spelling_sets_the_same_option(script, canonical, alias, value):
    values = [] if value is None else value.split()
    by_alias, by_name = _parse(script, alias, *values), _parse(script, canonical, *values)
    assert by_alias == by_name
    assert by_alias != _parse(script)  # the flag was not ignored


@pytest.mark.parametrize("script", ALL)
@pytest.mark.parametrize(("short", "long"), DTYPES)
def test_dtype_spellings(script, short, long):
    from g4t.precision import resolve_dtype

    a, b = _parse(script, "--dtype", short), _parse(script, "--dtype", long)
    da = a.model.dtype if hasattr(a, "model") else a.dtype
    db = b.model.dtype if hasattr(b, "model") else b.dtype
    assert resolve_dtype(da) == resolve_dtype(db)


def test_shared_options_have_one_name_and_one_help():
    helps: dict[str, set[str]] = {}
    for script in LLM:
        actions = make_parser(SCRIPTS[script][0])._option_string_actions
        for flag in SHARED:
            assert flag in actions, f"{script} lacks {flag}"
            helps.setdefault(flag, set()).add(actions[flag].help)
    for cls in (CollectConfig, SelectDataConfig):  # the teacher's and the judge's server
        actions = make_parser(cls)._option_string_actions
        for flag in SHARED[7:17]:  # the connection group, with the same help as everywhere
            assert flag in actions and actions[flag].help in helps[flag], f"{cls.__name__}: {flag}"
    assert {flag: h for flag, h in helps.items() if len(h) > 1} == {}
    train = make_parser(LoraTrainConfig)._option_string_actions
    for flag in ("--base_model", "--lora_model", "--dtype", "--load_in_8bit", "--load_in_4bit", "--load_8bit"):
        assert flag in train, f"lora_finetune.py lacks {flag}"


def test_script_defaults_come_from_the_group_factory():
    demo, runner, api = _parse("gpt4tools.py"), _parse("inference.py"), _parse("inference_chatgpt.py")
    assert demo.model.base_model == "auto" and demo.openai.max_retries == 2
    assert runner.backend == "hf" and runner.openai.max_retries == 5 and not runner.evaluate
    assert (api.backend, api.openai.openai_model, api.evaluate) == ("openai", "gpt-4o-mini", True)
    assert DemoConfig().model == demo.model  # the same defaults in Python as on the command line
    assert dataclasses.asdict(ApiInferenceConfig(ann_path="a.json", save_name="x")) == dataclasses.asdict(api)


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("inference.py", ["--ann_path", "a", "--save_name", "x"], "--base_model is required with --backend hf"),
        ("inference.py", ["--ann_path", "a", "--save_name", "x", "--backend", "openai"], "--openai_model"),
        ("inference_chatgpt.py", ["--ann_path", "a", "--save_name", "x", "--max_concurrency", "0"], "--max_concurrency"),
        ("inference.py", ["--ann_path", "a", "--save_name", "x", "--base_model", "m", "--load_8bit", "--load_in_4bit"],
         "at most one of --load_in_8bit and --load_in_4bit"),
        ("gpt4tools.py", ["--base_url", "http://127.0.0.1:9/v1"], "--openai_base_url needs --openai_model"),
    ],
)  # fmt: skip
def test_bad_combinations_exit_2_in_one_line(script, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(SCRIPTS[script][0], args=argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_runner_scripts_parse_the_same_flags():
    """The two runner scripts are thin shims over the same config: their --help lists the same options."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    helps = [
        subprocess.run(
            [sys.executable, script, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env
        )
        for script in RUNNERS
    ]
    assert all(h.returncode == 0 for h in helps)
    lines = [[line.split()[0].rstrip(",") for line in h.stdout.splitlines() if line.startswith("  --")] for h in helps]
    flags = [{f for f in found if not f.startswith("--no")} for found in lines]  # --no_evaluate: default True
    assert flags[0] == flags[1] and {"--backend", "--load_in_4bit", "--openai_model", "--num_chunks"} <= flags[0]
