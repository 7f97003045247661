"""Batch inference of a GPT4Tools annotation file with a local model (+ LoRA).

    python inference.py --base_model /models/vicuna-13b --lora_model output/gpt4tools \\
        --ann_path data/gpt4tools_val_seen.json --save_name vicuna13b_lora --batch_size 16
"""

import sys

from g4t.cli import parse_args
from g4t.inference import InferenceConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(InferenceConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
