"""The published GPT4Tools metrics (SR_t, SR_act, SR_args, SR, IoU), reproduced exactly, plus a strict mode.

Pure functions over strings. The published evaluator (``evaluate_result.py`` of AILab-CVC/GPT4Tools,
unchanged at HEAD ``eval/evaluate_result.py``) is mirrored branch by branch, so
the per-sample scores and their means are the same floating-point numbers:

* tool sample (GT output has ``Action:`` and ``Action Input:``): GT thoughts truncated to the number
  of GT actions; a trailing predicted ``No`` thought beyond the predicted actions is dropped;
  thought/action accuracy = exact matches over ``max(len_gt, len_pred)`` positions; argument score
  = per aligned position, comma-split pieces, BLEU-1 for text pieces, 1.0 when GT and prediction
  both contain ``.png`` (file names never compared), -1 (position scores 0) when only the GT has
  one, 0 when the piece counts differ; IoU over the concatenated vectors; success = thought 1,
  action 1, args >= 0.5.
* no-tool sample: thought accuracy as above, forced to 0 when the first predicted thought is not
  ``No`` or no ``AI: `` line exists; IoU over thoughts only; action = args = success = 1, all 0
  when the thought accuracy is below 1.

The arithmetic is plain Python on short lists, not numpy on tiny arrays (a third faster per sample), and
still bit-identical: flags are 0/1, and every sum of floats is taken in numpy's own order
(``np_sum``: pairwise, eight accumulators), which ``tests/test_eval_metrics.py`` checks against numpy.

``strict=True`` is a separate, named mode that never changes the published numbers: image
arguments must name the same file, and arguments are split by the tool's declared inputs (commas
inside a text argument no longer zero the score). ``g4t.evaluation.report`` also counts missing
predictions as failures in strict mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from g4t.react import ACTION_INPUT_RE, ACTION_RE, AI_RE, THOUGHT_RE  # the published regexes

__all__ = [
    "ACTION_INPUT_RE",
    "ACTION_RE",
    "AI_RE",
    "THOUGHT_RE",
    "SampleScore",
    "acc_item",
    "args_acc_item",
    "bleu1",
    "extract_prediction",
    "np_mean",
    "np_sum",
    "score_sample",
    "split_strict_args",
]

_IMAGE_EXT = re.compile(r"\.(png|jpe?g|webp|bmp|gif)\b", re.IGNORECASE)


@dataclass
class SampleScore:
    """Scores of one prediction.

    Attributes:
        thought: SR_t of the sample (published "Thought Acc").
        action: SR_act ("Action Acc").
        args: SR_args ("Action Args Acc").
        success: SR (1.0 or 0.0; "Acc").
        iou: IoU.
        uses_tool: whether the GT sample calls a tool.
        gt_tools: GT tool names in order (empty for no-tool samples).
    """

    thought: float
    action: float
    args: float
    success: float
    iou: float
    uses_tool: bool
    gt_tools: list[str] = field(default_factory=list)


def _findall(pattern: re.Pattern, text: str) -> list[str]:
    return [m.strip() for m in pattern.findall(text)]


def np_sum(values: Sequence[float]) -> float:
    """The sum numpy gives for a float64 vector, bit for bit: its pairwise summation, done in Python.

    numpy adds fewer than 8 values in order; up to 128 values in 8 interleaved accumulators combined as
    ``((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))`` plus the tail in order; longer vectors as the
    sums of two halves (the first a multiple of 8 long).
    """
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n <= 128:
        acc = [float(v) for v in values[:8]]
        stop = n - n % 8
        for i in range(8, stop, 8):
            for j in range(8):
                acc[j] += values[i + j]
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for v in values[stop:]:
            total += v
        return total
    half = n // 2
    half -= half % 8
    return np_sum(values[:half]) + np_sum(values[half:])


def np_mean(values: Sequence[float]) -> float:
    """``np.mean`` of a short float vector, bit for bit (an empty one gives nan, as published, silently)."""
    return np_sum(values) / len(values) if values else float("nan")


@lru_cache(maxsize=65536)
def bleu1(reference: str, hypothesis: str) -> float:
    """BLEU-1 of ``hypothesis`` against ``reference``: pycocoevalcap ``Bleu(n=1)``, as published.

    Same call as ``get_word_sim`` of the published evaluator, with the scorer's debug print off.
    """
    from pycocoevalcap.bleu.bleu import Bleu

    return Bleu(n=1).compute_score({1: [reference]}, {1: [hypothesis]}, verbose=0)[0][0]


def acc_item(gt: list[str], pred: list[str]) -> tuple[list[float], list[float]]:
    """Published ``get_acc_item``: exact-match flags over ``max(len)`` positions and the GT mask."""
    n_min, n_max = min(len(pred), len(gt)), max(len(pred), len(gt))
    flag = [1.0 if pred[i] == gt[i] else 0.0 for i in range(n_min)] + [0.0] * (n_max - n_min)
    return flag, [1.0] * len(gt) + [0.0] * (n_max - len(gt))


def split_strict_args(text: str, tool_name: str | None = None) -> list[str]:
    """Split an Action Input for strict scoring.

    A registered tool is split by its declared inputs (``g4t.tools.registry.split_args``, which keeps
    commas inside text arguments); any other tool into its leading image path(s) and one text argument.
    """
    n = None
    if tool_name:
        from g4t.tools import TOOLS

        spec = TOOLS.get(tool_name)
        n = len(spec.inputs) if spec else None
    if n is not None:
        from g4t.tools.registry import split_args

        return split_args(text, n)
    pieces = text.split(",")
    head = []
    while pieces and _IMAGE_EXT.search(pieces[0]):
        head.append(pieces.pop(0).strip())
    rest = ",".join(pieces).strip()
    return head + ([rest] if pieces else [])


def _norm_path(text: str) -> str:
    return text.strip().strip("\"'").strip()


def args_acc_item(
    gt: list[str], pred: list[str], strict: bool = False, gt_tools: list[str] | None = None
) -> tuple[list[float], list[float]]:
    """Published ``get_args_acc_item`` (``strict=False``) or its strict variant.

    Args:
        gt: GT Action Input strings, one per step.
        pred: predicted Action Input strings.
        strict: compare image file names and split by declared tool inputs.
        gt_tools: GT tool names per step (used by ``strict`` to find the declared inputs).
    """
    n_max = max(len(pred), len(gt))
    flag = [0.0] * n_max
    for idx, (pred_item, gt_item) in enumerate(zip(pred, gt, strict=False)):
        if strict:
            tool = gt_tools[idx] if gt_tools and idx < len(gt_tools) else None
            gt_pieces, pred_pieces = split_strict_args(gt_item, tool), split_strict_args(pred_item, tool)
        else:
            gt_pieces, pred_pieces = gt_item.split(","), pred_item.split(",")
        if len(gt_pieces) != len(pred_pieces):
            continue
        scores: list[float] = []
        for k, v in zip(gt_pieces, pred_pieces, strict=True):
            if ".png" in k and ".png" not in v:
                scores.append(-1)
            elif ".png" not in k:
                scores.append(bleu1(k, v))
            elif strict and _norm_path(k) != _norm_path(v):
                scores.append(-1)
            else:
                scores.append(1.0)
        flag[idx] = 0.0 if (-1 in scores) else np_mean(scores)
    return flag, [1.0] * len(gt) + [0.0] * (n_max - len(gt))


def _iou(res: list[float], gt: list[float]) -> float:
    """Published ``sum(res * gt) / max(sum(maximum(res, gt)), 1)`` over the flag vectors."""
    inter = np_sum([r * g for r, g in zip(res, gt, strict=True)])
    return inter / max(np_sum([max(r, g) for r, g in zip(res, gt, strict=True)]), 1.0)


def score_sample(gt_output: str, pred_output: str, strict: bool = False) -> SampleScore:
    """Score one prediction (already stripped of its prompt) against the GT ``output``.

    Published ``evaluate_item`` when ``strict`` is False.

    Raises:
        ValueError: the GT output has a different number of ``Action:`` and ``Action Input:`` lines
            (the published evaluator asserts on it).
    """
    pred_thought = _findall(THOUGHT_RE, pred_output)
    gt_thought = _findall(THOUGHT_RE, gt_output)
    if "Action:" in gt_output and "Action Input:" in gt_output:
        gt_tools = _findall(ACTION_RE, gt_output)
        gt_args = _findall(ACTION_INPUT_RE, gt_output)
        if len(gt_tools) != len(gt_args):
            raise ValueError(f"GT output has {len(gt_tools)} 'Action:' lines but {len(gt_args)} 'Action Input:' lines")
        if len(gt_thought) != len(gt_tools):
            gt_thought = gt_thought[: len(gt_tools)]
        pred_tools = _findall(ACTION_RE, pred_output)
        action_res, action_gt = acc_item(gt_tools, pred_tools)
        action = np_mean(action_res)
        pred_args = _findall(ACTION_INPUT_RE, pred_output)
        args_res, args_gt = args_acc_item(gt_args, pred_args, strict=strict, gt_tools=gt_tools)
        args = np_mean(args_res)
        # A final "No" thought after the last action does not change what was executed: tolerated.
        if len(pred_thought) == 1 + len(pred_tools) and pred_thought[-1] == "No":
            pred_thought.pop(-1)
        thought_res, thought_gt = acc_item(gt_thought, pred_thought)
        thought = np_mean(thought_res)
        iou = _iou(thought_res + action_res + args_res, thought_gt + action_gt + args_gt)
        success = 0.0 if (thought < 1.0 or action < 1.0 or args < 0.5) else 1.0
        return SampleScore(thought, action, args, success, iou, True, gt_tools)

    thought_res, thought_gt = acc_item(gt_thought, pred_thought)
    thought = np_mean(thought_res)
    if len(pred_thought) == 0 or pred_thought[0].strip() != "No":
        thought = 0.0
    if len(AI_RE.findall(pred_output)) == 0:
        thought = 0.0
    iou = _iou(thought_res, thought_gt)
    if thought < 1.0:
        return SampleScore(thought, 0.0, 0.0, 0.0, iou, False)
    return SampleScore(thought, 1.0, 1.0, 1.0, iou, False)


def _squash(text: str) -> str:
    return "".join(text.split())


def extract_prediction(output: str | list, instruction: str, mode: str = "auto") -> tuple[str, str]:
    """The completion part of a stored prediction, and how it was found.

    Args:
        output: the stored ``output`` (a list means its first element, as published).
        instruction: the GT ``instruction``.
        mode: ``"full"`` = published ``output[len(instruction):].strip()``; ``"completion"`` = published
            ``evaluate_gpt`` (``output.strip()``); ``"auto"`` = ``full`` when the output starts with the
            instruction, exactly or up to whitespace (a tokenizer round trip), else ``completion``.

    Returns:
        ``(prediction, how)`` with ``how`` in ``"full"``, ``"full~"`` (approximate prompt match),
        ``"completion"``.
    """
    text = output[0] if isinstance(output, list) else output
    if mode == "full":
        return text[len(instruction) :].strip(), "full"
    if mode == "completion":
        return text.strip(), "completion"
    if text.startswith(instruction):
        return text[len(instruction) :].strip(), "full"
    head = _squash(instruction[:400])
    if head and _squash(text[: len(instruction[:400]) + 200]).startswith(head):
        return text[len(instruction) :].strip(), "full~"
    return text.strip(), "completion"
