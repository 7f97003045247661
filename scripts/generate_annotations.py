"""Build GPT4Tools training records and val/test splits from teacher replies.

    python scripts/generate_annotations.py --input_path instructions.jsonl --output_path data/train.json \\
        --filter --complement --insert_alpaca --alpaca_path alpaca_gpt4_data.json \\
        --val_ratio 0.05 --test_ratio 0.05 --unseen_tools "Crop Image,Text Detection On Image,Detection" --seed 42
"""

import sys

from g4t.cli import parse_args
from g4t.data.annotate import AnnotateConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(AnnotateConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
