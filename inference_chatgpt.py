"""Batch inference through any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, Ollama), then evaluation.

    OPENAI_API_KEY=... python inference_chatgpt.py --ann_path data/gpt4tools_val_seen.json --save_name gpt4o_mini \\
        --model gpt-4o-mini
    python inference_chatgpt.py --base_url http://localhost:8000/v1 --mode completions --template gpt4tools \\
        --model gpt4tools --ann_path data/gpt4tools_val_seen.json --save_name vllm_lora
"""

import sys

from g4t.cli import parse_args
from g4t.inference_api import ApiInferenceConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(ApiInferenceConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
