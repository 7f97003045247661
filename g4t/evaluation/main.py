"""``evaluate_result.py``: gather chunk files, score them, print and write the reports."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from g4t.cli import arg
from g4t.data.io import DataError, atomic_write_json
from g4t.evaluation.gather import gather_chunks
from g4t.evaluation.io import load_annotations, load_predictions
from g4t.evaluation.kinds import format_by_kind
from g4t.evaluation.report import (
    METRICS,
    EvalResult,
    evaluate_predictions,
    format_per_tool,
    published_record,
    write_outputs,
)

__all__ = ["EvalConfig", "main", "run"]


@dataclass
class EvalConfig:
    """Configuration of ``evaluate_result.py`` (flags compatible with the published script)."""

    ann_path: str = arg(help="GT annotation file (gpt4tools_val_seen.json / gpt4tools_test_unseen.json).")
    save_name: str = arg(help="Run name: predictions are read from {save_path}/{save_name}/{save_name}_{idx}.json.")
    save_path: str = arg("output/eval_result", help="Root folder of inference results.")
    num_chunks: int = arg(1, help="Number of chunk files to gather (any number).", aliases=["--num-chunks"])
    pred_path: str | None = arg(None, help="Evaluate this [{id, output}] file directly instead of gathering chunks.")
    prompt_mode: Literal["auto", "full", "completion"] = arg(
        "auto",
        help="How to find the completion in 'output': full = published slicing output[len(instruction):]; "
        "completion = the output is the completion (published evaluate_gpt); auto = full when the output "
        "starts with the instruction, else completion.",
    )
    allow_missing_chunks: bool = arg(False, help="Evaluate the chunk files that exist instead of failing.")
    strict: bool = arg(
        False,
        help="Also score in strict mode (image file names must match, commas allowed inside text arguments, "
        "missing predictions count as failures); never changes the published figures.",
    )
    chart: bool = arg(False, help="Also draw the per-tool success bar chart ({save_name}_per_tool.png, matplotlib).")

    def __post_init__(self) -> None:
        if self.num_chunks < 1:
            raise ValueError(f"--num-chunks must be >= 1, got {self.num_chunks}")


def run(cfg: EvalConfig) -> EvalResult:
    """Gather, score and write every output; returns the result (raises ``DataError`` on bad files)."""
    annotations = load_annotations(cfg.ann_path)
    counts: dict = {}
    if cfg.pred_path:
        predictions = load_predictions(cfg.pred_path)
        out_dir = Path(cfg.pred_path).parent
        sources = {"prediction_files": [cfg.pred_path]}
    else:
        gathered = gather_chunks(cfg.save_path, cfg.save_name, cfg.num_chunks, cfg.allow_missing_chunks)
        predictions = gathered.predictions
        out_dir = Path(cfg.save_path) / cfg.save_name
        gathered_file = out_dir / f"{cfg.save_name}.json"
        atomic_write_json(gathered_file, predictions)
        print(f"Gathered {len(predictions)} predictions from {len(gathered.files)} chunk files into {gathered_file}")
        if gathered.duplicate_ids:
            print(
                f"WARNING: {len(gathered.duplicate_ids)} ids occur in more than one chunk record "
                f"({len(gathered.conflicting_ids)} with different outputs; the last one is used): "
                f"{gathered.duplicate_ids[:10]}"
            )
        sources = {
            "prediction_files": [str(p) for p in gathered.files],
            "duplicate_prediction_ids": gathered.duplicate_ids,
            "conflicting_prediction_ids": gathered.conflicting_ids,
        }
        counts = {"duplicate_predictions": len(gathered.duplicate_ids)}
    result = evaluate_predictions(annotations, predictions, cfg.prompt_mode, cfg.ann_path, strict=cfg.strict)
    if result.unknown_ids:
        print(
            f"WARNING: {len(result.unknown_ids)} predictions have no GT id (skipped, as published): {result.unknown_ids[:10]}"
        )
    if result.missing_ids:
        print(
            f"WARNING: {len(result.missing_ids)} of {len(annotations)} GT samples have no prediction "
            f"(published means ignore them; --strict means count them as failures): {result.missing_ids[:10]}"
        )
    if result.duplicate_gt_ids:
        print(f"WARNING: duplicate ids in {cfg.ann_path} (the last one is used): {result.duplicate_gt_ids[:10]}")
    sources.update({"ann_path": cfg.ann_path, "prompt_mode": cfg.prompt_mode, "counts": counts})
    paths = write_outputs(result, out_dir, cfg.save_name, sources, chart=cfg.chart)
    print(published_record(result))
    if result.strict is not None:
        print("Strict mode (image file names must match, text arguments may contain commas, missing = 0):")
        print("        " + "  ".join(f"{paper}: {100 * result.strict[k]:.2f}" for k, _, paper in METRICS))
        print()
    print(format_per_tool(result))
    call_sr, choice = result.kinds.tool_call_sr, result.kinds.tool_choice
    if call_sr is not None:
        print(f"Tool-call SR {100 * call_sr:.1f} %, right first tool {100 * choice:.1f} % (records that call a tool)")
    print("By record kind (right, or why not):")
    print(format_by_kind(result.kinds))
    print("Wrote " + ", ".join(str(p) for p in paths.values()))
    return result


def main(cfg: EvalConfig) -> int:
    """CLI entry point: returns the exit status; bad inputs print one clear line, never a traceback."""
    try:
        run(cfg)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
