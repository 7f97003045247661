"""Batch inference through any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, Ollama), then evaluation.

    OPENAI_API_KEY=... python inference_chatgpt.py --ann_path data/gpt4tools_val_seen.json --save_name gpt4o_mini \\
        --openai_model gpt-4o-mini
    python inference_chatgpt.py --openai_base_url http://localhost:8000/v1 --openai_mode completions \\
        --template gpt4tools --openai_model gpt4tools --ann_path data/gpt4tools_val_seen.json --save_name vllm_lora

Same runner and flags as inference.py (``--backend openai`` by default here).
"""

import sys

from g4t.cli import parse_args
from g4t.inference import main
from g4t.inference_api import ApiInferenceConfig

if __name__ == "__main__":
    (cfg,) = parse_args(ApiInferenceConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
