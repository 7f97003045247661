"""Select a high-quality, diverse subset of GPT4Tools annotations (InstructionGPT-4 method).

    python scripts/select_data.py --data_path data/gpt4tools_71k.json --budget 2000 \\
        --base_model lmsys/vicuna-7b-v1.5 --val_path data/gpt4tools_val_seen.json \\
        --output_path output/selected_2k.json

The work is in ``g4t.selection.pipeline``; see docs/selection.md.
"""

from __future__ import annotations

import sys

from g4t.cli import parse_args
from g4t.selection.pipeline import SelectDataConfig, run


def main(argv: list[str] | None = None) -> int:
    (cfg,) = parse_args(SelectDataConfig, args=argv, description=__doc__.split("\n\n")[0])
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
