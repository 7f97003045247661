"""The published ``evaluate_result.py`` procedure, re-implemented as the baseline of ``bench/evaluator_speed.py``.

Written from the description of the published evaluator (AILab-CVC/GPT4Tools ``evaluate_result.py``,
unchanged at HEAD ``eval/evaluate_result.py``); no published code is copied. It keeps what costs
time there and its exact metric definitions:

* gather: glob ``{save_name}_[0-{N-1}].json`` (one-character class, as published), concatenate,
  deduplicate by id (last one wins), ``json.dump`` the result to ``{save_name}.json``;
* per sample: find the GT, slice the prompt off (``output[len(instruction):].strip()``), ``re.findall``
  the four published patterns, numpy flag vectors (``get_acc_item`` / ``get_args_acc_item``),
  pycocoevalcap ``Bleu(n=1)`` for every text argument piece, numpy means, IoU, success;
* the five means printed and written to ``eval.txt``.

It is kept at its fastest, never slowed down: the GT is found through a dict, and the scorer's
per-call debug print (``verbose=1`` in the published call) is off. Like the published script it
imports only the standard library, numpy and pycocoevalcap, so its command line starts as fast::

    python bench/published_evaluator.py --ann_path A.json --save_path DIR --save_name NAME --num-chunks 2
"""

from __future__ import annotations

import argparse
import glob
import json
import re

import numpy as np

THOUGHT = r"Thought: Do I need to use a tool\? (.*)"
ACTION = r"Action: (.*)"
ACTION_INPUT = r"Action Input: (.*)"
AI = r"AI: (.*)"


class PublishedEvaluator:
    """The published ``EvalTools`` procedure (``evaluate`` = gather + score + ``eval.txt``).

    Attributes:
        samples: ``(thought, action, args, acc, iou)`` of every scored prediction, in gathered order.
    """

    def __init__(self, ann_path: str, save_path: str, save_name: str, num_chunks: int):
        from pycocoevalcap.bleu.bleu import Bleu

        self.ann_path, self.save_path, self.save_name, self.num_chunks = ann_path, save_path, save_name, num_chunks
        self.bleu = Bleu(n=1)
        self.samples: list[tuple] = []

    def gather(self) -> list[dict]:
        """Concatenate the chunk files, deduplicate by id, dump ``{save_name}.json``."""
        folder = f"{self.save_path}/{self.save_name}"
        preds = []
        for path in sorted(glob.glob(f"{folder}/{self.save_name}_[0-{self.num_chunks - 1}].json")):
            with open(path) as f:
                preds += json.load(f)
        unique = {}
        for p in preds:
            unique[p["id"]] = p
        preds = list(unique.values())
        with open(f"{folder}/{self.save_name}.json", "w") as f:
            json.dump(preds, f)
        return preds

    def word_sim(self, gt: str, pred: str) -> float:
        """BLEU-1 of ``pred`` against ``gt`` (pycocoevalcap, as published)."""
        return self.bleu.compute_score({1: [gt]}, {1: [pred]}, verbose=0)[0][0]

    @staticmethod
    def acc_item(gt: list, pred: list) -> tuple[np.ndarray, np.ndarray]:
        """Exact-match flags over ``max(len)`` positions and the GT mask."""
        n_min, n_max = min(len(gt), len(pred)), max(len(gt), len(pred))
        flag, flag_gt = np.zeros(n_max), np.zeros(n_max)
        for i in range(n_min):
            flag[i] = 1.0 if pred[i] == gt[i] else 0.0
        flag_gt[: len(gt)] = 1.0
        return flag, flag_gt

    def args_acc_item(self, gt: list, pred: list) -> tuple[np.ndarray, np.ndarray]:
        """Per aligned step: comma pieces, -1 for a missing image, BLEU-1 for text, 1 for two images."""
        n_min, n_max = min(len(gt), len(pred)), max(len(gt), len(pred))
        flag, flag_gt = np.zeros(n_max), np.zeros(n_max)
        for i in range(n_min):
            gt_pieces, pred_pieces = re.split(",", gt[i]), re.split(",", pred[i])
            if len(gt_pieces) != len(pred_pieces):
                continue
            scores = []
            for k, v in zip(gt_pieces, pred_pieces, strict=True):
                if ".png" in k and ".png" not in v:
                    scores.append(-1)
                elif ".png" not in k:
                    scores.append(self.word_sim(k, v))
                else:
                    scores.append(1.0)
            flag[i] = 0.0 if -1 in scores else np.mean(scores)
        flag_gt[: len(gt)] = 1.0
        return flag, flag_gt

    def evaluate_item(self, gt: str, pred: str) -> tuple:
        """``(thought, action, args, acc, iou)`` of one completion."""
        pred_thought = [t.strip() for t in re.findall(THOUGHT, pred)]
        gt_thought = [t.strip() for t in re.findall(THOUGHT, gt)]
        if "Action:" in gt and "Action Input:" in gt:
            gt_action = [t.strip() for t in re.findall(ACTION, gt)]
            gt_args = [t.strip() for t in re.findall(ACTION_INPUT, gt)]
            assert len(gt_action) == len(gt_args)
            gt_thought = gt_thought[: len(gt_action)]
            pred_action = [t.strip() for t in re.findall(ACTION, pred)]
            pred_args = [t.strip() for t in re.findall(ACTION_INPUT, pred)]
            if len(pred_thought) == len(pred_action) + 1 and pred_thought[-1] == "No":
                pred_thought = pred_thought[:-1]
            t_res, t_gt = self.acc_item(gt_thought, pred_thought)
            a_res, a_gt = self.acc_item(gt_action, pred_action)
            g_res, g_gt = self.args_acc_item(gt_args, pred_args)
            thought, action, args = np.mean(t_res), np.mean(a_res), np.mean(g_res)
            res, ref = np.concatenate([t_res, a_res, g_res]), np.concatenate([t_gt, a_gt, g_gt])
            iou = np.sum(res * ref) / max(np.sum(np.maximum(res, ref)), 1)
            acc = 0 if (thought < 1 or action < 1 or args < 0.5) else 1
            return thought, action, args, acc, iou
        t_res, t_gt = self.acc_item(gt_thought, pred_thought)
        thought = np.mean(t_res)
        if len(pred_thought) == 0 or pred_thought[0] != "No":
            thought = 0
        if len(re.findall(AI, pred)) == 0:
            thought = 0
        iou = np.sum(t_res * t_gt) / max(np.sum(np.maximum(t_res, t_gt)), 1)
        if thought < 1:
            return thought, 0, 0, 0, iou
        return thought, 1, 1, 1, iou

    def evaluate(self) -> str:
        """Gather, score every prediction, print and write ``eval.txt``; returns its text."""
        preds = self.gather()
        with open(self.ann_path) as f:
            gts = {a["id"]: a for a in json.load(f)}
        self.samples = []
        for p in preds:
            gt = gts.get(p["id"])
            if gt is None:
                print("Empty Gt")
                continue
            output = p["output"][0] if isinstance(p["output"], list) else p["output"]
            self.samples.append(self.evaluate_item(gt["output"], output[len(gt["instruction"]) :].strip()))
        thought, action, args, acc, iou = (np.mean(c) for c in zip(*self.samples, strict=True))
        text = f"""
        Thought Acc: {thought}
        Action Acc: {action}
        Action Args Acc: {args}
        Acc: {acc}
        IoU: {iou}
        """
        print(text)
        with open(f"{self.save_path}/{self.save_name}/eval.txt", "w") as f:
            f.write(text)
        return text


def main(argv: list[str] | None = None) -> None:
    """The published command line (``--ann_path --save_path --save_name --num-chunks``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ann_path", required=True)
    parser.add_argument("--save_path", default="output/eval_result")
    parser.add_argument("--save_name", required=True)
    parser.add_argument("--num-chunks", type=int, default=1)
    args = parser.parse_args(argv)
    PublishedEvaluator(args.ann_path, args.save_path, args.save_name, args.num_chunks).evaluate()


if __name__ == "__main__":
    main()
