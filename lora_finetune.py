"""Fine-tune an LLM on GPT4Tools data with LoRA (or fully). Runs single-process or under torchrun.

Derived from alpaca-lora's finetune.py (tloen/alpaca-lora, Apache-2.0) through GPT4Tools v1's
lora_finetune.py; the published CLI is kept argument for argument. The work is in ``g4t.train``.

    torchrun --nproc_per_node=8 lora_finetune.py --base_model ... --data_path gpt4tools_71k.json \\
        --output_dir output/gpt4tools --prompt_template_name gpt4tools --num_epochs 6 --batch_size 512 \\
        --cutoff_len 2048 --group_by_length --lora_target_modules '[q_proj,k_proj,v_proj,o_proj]' \\
        --lora_r 16 --micro_batch_size=8
"""

from __future__ import annotations

import sys

from g4t.cli import parse_args
from g4t.data.io import DataError
from g4t.interrupts import Interrupted
from g4t.train.config import LoraTrainConfig, TrainError


def main(argv: list[str] | None = None) -> int:
    (cfg,) = parse_args(LoraTrainConfig, args=argv, description=__doc__.split("\n\n")[0])
    from g4t.train.trainer import main as train

    try:
        train(cfg)
    except (TrainError, DataError) as e:  # a user error: exit 2 with one line, as every CLI here (and parse_args)
        print(f"lora_finetune.py: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # during training a checkpoint was saved first (see g4t.train.trainer)
        print(f"lora_finetune.py: interrupted ({e}); rerun the same command to resume", file=sys.stderr)
        return e.exit_status  # 130 for Ctrl-C, 143 for SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
