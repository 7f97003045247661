"""Select a high-quality, diverse subset of GPT4Tools annotations (InstructionGPT-4 method).

    python scripts/select_data.py --data_path data/gpt4tools_71k.json --budget 2000 \\
        --base_model lmsys/vicuna-7b-v1.5 --val_path data/gpt4tools_val_seen.json \\
        --output_path output/selected_2k.json

The work is in ``g4t.selection.pipeline``; see docs/selection.md.
"""

from __future__ import annotations

import os
import sys

from g4t.cli import parse_args
from g4t.data.io import DataError
from g4t.interrupts import Interrupted
from g4t.selection.pipeline import SelectDataConfig, run


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 a labelling script failed; 2 bad input; 130 / 143 interrupted (finished
    stages saved: a rerun of the same command resumes)."""
    (cfg,) = parse_args(SelectDataConfig, args=argv, description=__doc__.split("\n\n")[0])
    try:
        run(cfg)
    except (DataError, ValueError) as e:
        print(f"select_data.py: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a lora_finetune.py / inference.py / evaluate_result.py run failed (log named)
        print(f"select_data.py: error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"select_data.py: interrupted ({e}); finished stages are saved, rerun the same command", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.exit_status)  # judge requests still in flight (pool threads) must not delay the exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
