"""Convert MagicBrush edit sessions into chained GPT4Tools editing samples (every turn, none lost).

    python scripts/magicbrush_to_instructions.py --data_dir ../shared/data/magicbrush_dev \\
        --output_path data/magicbrush_dev_train.json --eval_path data/magicbrush_dev_eval.json
"""

import sys

from g4t.cli import parse_args
from g4t.data.magicbrush import MagicBrushConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(MagicBrushConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
