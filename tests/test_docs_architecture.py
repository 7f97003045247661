"""docs/architecture.md stays true: every script is in its table, and every module or function it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_script_is_in_the_table():
    scripts = [p.name for p in ROOT.glob("*.py")] + [f"scripts/{p.name}" for p in (ROOT / "scripts").glob("*.*")]
    rows = [line for line in DOC.splitlines() if line.startswith("| `")]
    missing = [s for s in scripts if not any(f"`{s}`" in row for row in rows)]
    assert missing == []


def test_every_named_module_and_function_exists():
    names = set(re.findall(r"`?(g4t(?:\.[a-z_]+)+(?:\.[A-Za-z_]+)?)", DOC))
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert missing == []


def test_every_bench_is_listed():
    benches = [p.name for p in (ROOT / "bench").glob("*.py") if p.name != "__init__.py"]
    assert [b for b in benches if f"`{b}`" not in DOC] == []


def test_the_runtime_never_imports_the_test_support():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "g4t").rglob("*.py") if "testkit" in p.read_text()]
    assert offenders == []
