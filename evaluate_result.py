"""Evaluate GPT4Tools predictions: published metrics (SR_t, SR_act, SR_args, SR, IoU) plus reports.

python evaluate_result.py --ann_path data/gpt4tools_val_seen.json --save_name vicuna13b_lora --num-chunks 2
"""

import sys

from g4t.cli import parse_args
from g4t.evaluation.main import EvalConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(EvalConfig, description=__doc__)
    sys.exit(main(cfg))
