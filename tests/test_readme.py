"""The README's commands only use flags the scripts really have (docs stay true to the code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> dict[str, set[str]]:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "README.md").read_text(encoding="utf-8"))
    flags: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.search(r"python ((?:scripts/|bench/)?\w+\.py)(.*)", line)
        if m:
            # quoted values may carry another script's flags (e.g. --label_train_args "--lora_r 16")
            args = re.sub(r"\"[^\"]*\"|'[^']*'", "''", m.group(2).split("#")[0])
            flags.setdefault(m.group(1), set()).update(re.findall(r"(--[\w-]+)", args))
    return flags


def test_readme_flags_exist():
    commands = _commands()
    assert {"gpt4tools.py", "lora_finetune.py", "inference.py", "evaluate_result.py", "inference_chatgpt.py"} <= set(
        commands
    )
    missing = []
    for script, flags in commands.items():
        assert (ROOT / script).is_file(), f"README names {script}, which does not exist"
        if not flags:
            continue
        help_text = subprocess.run(
            [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
        ).stdout
        missing += [f"{script} {flag}" for flag in sorted(flags) if flag not in help_text]
    assert not missing, f"README uses flags the scripts do not have: {missing}"
