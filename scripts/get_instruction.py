"""Ask a teacher LLM (any OpenAI-compatible chat model) for tool-use instructions, one per tool per caption.

    OPENAI_API_KEY=... python scripts/get_instruction.py --caption_path captions.json \\
        --instruction_path instructions.jsonl --model gpt-3.5-turbo --concurrency 16

Rerun the same command to resume; failures are listed in <instruction_path>.failed.jsonl.
"""

import sys

from g4t.cli import parse_args
from g4t.data.collect import CollectConfig, main

if __name__ == "__main__":
    (cfg,) = parse_args(CollectConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(cfg))
