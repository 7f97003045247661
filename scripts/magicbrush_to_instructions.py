"""Convert MagicBrush edit sessions into chained GPT4Tools editing samples (every turn, none lost).

    python scripts/magicbrush_to_instructions.py --data_dir ../shared/data/magicbrush_dev \\
        --output_path data/magicbrush_dev_train.json --eval_path data/magicbrush_dev_eval.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from g4t.cli import parse_args  # noqa: E402
from g4t.data.magicbrush import MagicBrushConfig, main  # noqa: E402

if __name__ == "__main__":
    (cfg,) = parse_args(MagicBrushConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
