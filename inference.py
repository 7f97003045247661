"""Batch inference of a GPT4Tools annotation file with a local model (+ LoRA) or an OpenAI-compatible server.

    python inference.py --base_model /models/vicuna-13b --lora_model output/gpt4tools \\
        --ann_path data/gpt4tools_val_seen.json --save_name vicuna13b_lora --batch_size 16
    python inference.py --backend openai --openai_base_url http://localhost:8000/v1 --openai_model gpt4tools \\
        --openai_mode completions --ann_path data/gpt4tools_val_seen.json --save_name vllm_lora
"""

import sys

from g4t.cli import parse_args
from g4t.inference import InferenceConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(InferenceConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
