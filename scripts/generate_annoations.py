"""Alias of scripts/generate_annotations.py under the published (misspelled) name."""

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().with_name("generate_annotations.py")), run_name="__main__")
