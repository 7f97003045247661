"""``scripts/generate_annotations.py``: teacher replies -> train / val-seen / test-unseen records.

Pipeline (seeded end to end): load replies -> optional caption override -> shuffle and cap images ->
parse (skips counted by reason) -> ``--filter`` dedup -> split by image (``--unseen_tools`` only on
test images) -> conversations (condition tool first, 2-5 tools offered; ``--session_prompts``: the
train split's requests on one image share a prompt) -> ``--insert_alpaca`` negatives -> records
(training: a cut at every step with ``--complement``, the whole chain with ``--chain_targets``, tools renamed with ``--rename_tools``; val/test:
the published evaluation format) ->
shuffle, cap, then train + val + test + a JSON report written as one unit (all replaced or none).
Replies naming any registered tool are parsed; zero records is an error.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from g4t.cli import arg, split_list
from g4t.data.augment import rename_tools
from g4t.data.build import (
    Conversation,
    Sample,
    add_history,
    build_conversation,
    build_negative,
    build_sessions,
    eval_record,
    record_cuts,
    train_record,
)
from g4t.data.captions import load_captions
from g4t.data.catalog import registered_tools, tool_catalog
from g4t.data.dedup import dedup
from g4t.data.io import DataError, read_records, write_json_set
from g4t.data.parse import EXAMPLE_IMAGE, ParseReport, parse_teacher_reply
from g4t.data.split import SPLITS, assign_images, split_samples
from g4t.data.teacher import published_tool_names

__all__ = ["AnnotateConfig", "main", "run"]

logger = logging.getLogger(__name__)


@dataclass
class AnnotateConfig:
    """Options of ``scripts/generate_annotations.py`` (published flag spellings are accepted)."""

    input_path: str = arg(aliases=["--input-path"], help="get_instruction output: JSONL, or the published JSON list.")
    output_path: str = arg(aliases=["--output-path"], help="Training records (JSON list of instruction/input/output).")
    caption_path: str | None = arg(
        None,
        aliases=["--caption-path"],
        help="Replace captions from a COCO captions JSON or a caption list (by id, then file name).",
    )
    alpaca_path: str = arg("", aliases=["--alpaca-path"], help="Alpaca-format file for negative (no-tool) samples.")
    filter: bool = arg(False, help="Remove exact and near-duplicate instructions (per tool).")
    near_dup_threshold: float = arg(0.85, help="Jaccard similarity of content words that counts as a near-duplicate.")
    complement: bool = arg(
        False,
        help="Cut chains into step samples (condition tool first). Without it, raw message lists are written, as published.",
    )
    complement_mode: Literal["all", "random"] = arg(
        "all", help="all: one training record per step of each chain; random: one random step (published)."
    )
    chain_targets: bool = arg(
        False,
        help="A training record cut before a chain of tool calls (a condition tool, then the tool it feeds) "
        "outputs the whole chain, intermediate observations included, as the published val/test ground truth "
        "has it (scored from one generation), instead of the next call only. An agent stops at the first "
        "'Observation:' either way. Needs --complement.",
    )
    insert_alpaca: bool = arg(False, aliases=["--insert-alpaca"], help="Add negative samples from --alpaca_path.")
    alpaca_ratio: float = arg(
        1.0, aliases=["--alpaca-ratio"], help="Negatives per positive conversation (1.0 = as many)."
    )
    session_prompts: bool = arg(
        False,
        help="Build the train split in sessions, as in a chat where one user asks several things about one "
        "uploaded image: requests on the same image share one prompt (the same 2-5 tools in the same order, "
        "image name and history; --insert_alpaca negatives join a random session), so their instructions "
        "share the text up to 'New input: ', which lora_finetune.py --share_prefix computes once per "
        "micro-batch. Val/test outputs are the same with or without it.",
    )
    history_share: float = arg(
        0.0,
        help="With --session_prompts: share of a session's conversations (after its first) whose chat history "
        "also holds the one or two exchanges asked just before in the session ('Human: request' / 'AI: answer', "
        "as the demo's memory writes them), so the model learns to read a request, or a 'thanks' after a "
        "tool's result, in the middle of a chat.",
    )
    rename_tools: float = arg(
        0.0,
        help="Share of the tools in training prompts given a made-up name, consistently within a record or "
        "session (g4t.data.augment), so the model learns to choose a tool by its description, which is what a "
        "tool it was not trained on asks for; val/test keep the published names. Needs --complement.",
    )
    max_num_samples: int = arg(100000, help="Cap on training records (after shuffling).")
    max_num_images: int = arg(3000, help="Cap on images (caption records) used, after a seeded shuffle.")
    tools: list[str] = arg(
        default_factory=list,
        help="Tools added to the 26 published teacher tools (registry names), as in get_instruction --tools.",
    )
    unseen_tools: list[str] = arg(
        default_factory=list, help="Tools held out of training: their samples appear only in the test-unseen split."
    )
    val_ratio: float = arg(0.0, help="Fraction of images for the val-seen split (0 = none).")
    test_ratio: float = arg(0.0, help="Fraction of images for the test-unseen split (0 = none).")
    val_path: str | None = arg(None, help="Val-seen output (default: <output stem>_val_seen.json).")
    test_path: str | None = arg(None, help="Test-unseen output (default: <output stem>_test_unseen.json).")
    report_path: str | None = arg(None, help="Report JSON (default: <output stem>.report.json).")
    seed: int = arg(42, help="Seed of every random choice (same inputs + seed = same bytes).")

    def __post_init__(self) -> None:
        self.tools = split_list(self.tools)
        self.unseen_tools = split_list(self.unseen_tools)
        problems = []
        if self.alpaca_ratio < 0:
            problems.append(f"--alpaca_ratio must be >= 0, got {self.alpaca_ratio}")
        if self.max_num_samples < 1 or self.max_num_images < 1:
            problems.append("--max_num_samples and --max_num_images must be >= 1")
        if self.val_ratio < 0 or self.test_ratio < 0 or self.val_ratio + self.test_ratio >= 1:
            problems.append(f"need val_ratio, test_ratio >= 0 with a sum < 1, got {self.val_ratio}, {self.test_ratio}")
        if not 0 < self.near_dup_threshold <= 1:
            problems.append(f"--near_dup_threshold must be in (0, 1], got {self.near_dup_threshold}")
        if not 0 <= self.rename_tools <= 1:
            problems.append(f"--rename_tools must be in [0, 1], got {self.rename_tools}")
        elif self.rename_tools and not self.complement:
            problems.append("--rename_tools needs --complement (it renames tools in instruction/output records)")
        if self.chain_targets and not self.complement:
            problems.append("--chain_targets needs --complement (it sets the output of instruction/output records)")
        if self.insert_alpaca and not self.alpaca_path:
            problems.append("--insert_alpaca needs --alpaca_path")
        if problems:
            raise ValueError("; ".join(problems))

    def derived(self, suffix: str) -> str:
        out = Path(self.output_path)
        return str(out.with_name(out.stem + suffix))


def _load_replies(path: str) -> list[dict]:
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: holds no records; nothing written")
    for i, r in enumerate(records):
        where = f"{path}:{i + 1}" if path.endswith(".jsonl") else f"{path}: record {i}"
        for key in ("file_name", "caption", "instructions"):
            if key not in r:
                raise DataError(f"{where}: missing field {key!r}")
            if not isinstance(r[key], str):
                raise DataError(f"{where}: field {key!r} must be a string, got {type(r[key]).__name__}")
    return records


def _override_captions(records: list[dict], path: str) -> int:
    caps = load_captions(path)
    by_id = {c.id: c.caption for c in caps}
    by_name = {c.file_name: c.caption for c in caps}
    missing = 0
    for r in records:
        cap = by_id.get(str(r.get("id"))) if r.get("id") is not None else None
        cap = cap if cap is not None else by_name.get(r["file_name"])
        if cap is None:
            missing += 1
        else:
            r["caption"] = cap
    return missing


def _load_alpaca(path: str) -> list[dict]:
    items = read_records(path)
    for i, it in enumerate(items):
        for key in ("instruction", "output"):
            if not isinstance(it.get(key), str):
                raise DataError(f"{path}: record {i}: missing or non-string field {key!r}")
        if not isinstance(it.get("input", ""), str):
            raise DataError(f"{path}: record {i}: field 'input' must be a string")
    return items


def run(cfg: AnnotateConfig) -> dict:
    """Run the pipeline and write the outputs; returns the report."""
    rng = random.Random(cfg.seed)
    replies = _load_replies(cfg.input_path)
    report: dict = {"input_records": len(replies)}
    if cfg.caption_path:
        report["captions_not_found"] = _override_captions(replies, cfg.caption_path)
    rng.shuffle(replies)
    replies = replies[: cfg.max_num_images]
    report["images_used"] = len(replies)

    registry = registered_tools()
    unknown = [t for t in cfg.unseen_tools if t not in registry]
    if unknown:
        raise ValueError(f"--unseen_tools: unknown tool(s) {unknown}; registered: {sorted(registry)}")
    # Offered in prompts: the published teacher tools, then --tools (and condition tools they need).
    names = published_tool_names() + [t for t in cfg.tools if t not in published_tool_names()]
    offered = tool_catalog([n for n in names if n in registry])
    report["tools_not_registered"] = [n for n in names if n not in registry]
    # Parsed: every registered tool, so replies naming a tool outside the published 26 (EFE's
    # "Edit Image Using Text") are kept without --tools.
    catalog = {**offered, **tool_catalog([n for n in registry if n not in offered])}
    n_args = {n: t.n_args for n, t in catalog.items()}
    needs_image = {n: t.needs_image for n, t in catalog.items()}

    parse_report = ParseReport()
    samples: list[Sample] = []
    for i, r in enumerate(replies):
        image_id = str(r["id"]) if r.get("id") is not None else f"{r['file_name']}#{i}"
        for inst in parse_teacher_reply(
            r["instructions"], n_args, needs_image, (EXAMPLE_IMAGE, r["file_name"]), parse_report
        ):
            samples.append(
                Sample(inst.instruction, inst.tool, inst.args, r["caption"], r["file_name"], image_id, inst.raw)
            )
    report["parse"] = parse_report.as_dict()
    if not samples:
        skipped = ", ".join(f"{n} {reason}" for reason, n in parse_report.skipped.most_common()) or "none"
        raise DataError(
            f"{cfg.input_path}: no instruction parsed from {parse_report.lines} reply line(s) "
            f"(skipped: {skipped}); nothing written"
        )
    # Tools found in the replies join the offered pool, as if named by --tools (registry order).
    used = {s.tool for s in samples} | ({catalog[s.tool].condition for s in samples} - {None})
    offered.update({n: catalog[n] for n in catalog if n in used and n not in offered})

    if cfg.filter:
        samples, dd = dedup(
            samples,
            key=lambda s: (s.tool, " ".join([s.instruction, *[a for a in s.args if a != EXAMPLE_IMAGE]])),
            threshold=cfg.near_dup_threshold,
        )
        report["dedup"] = asdict(dd)

    assignment = assign_images([s.image_id for s in samples], cfg.val_ratio, cfg.test_ratio, cfg.seed)
    by_split, sr = split_samples(samples, assignment, cfg.unseen_tools, catalog)
    report["split"] = asdict(sr)

    unseen = set(cfg.unseen_tools)
    seen_pool = [n for n in offered if n not in unseen and (offered[n].condition or "") not in unseen]
    full_pool = list(offered)
    convs = {}
    neg_items: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        pool = full_pool if split == "test" else seen_pool
        convs[split] = [build_conversation(s, catalog, pool, rng) for s in by_split[split]]

    if cfg.insert_alpaca:
        alpaca = _load_alpaca(cfg.alpaca_path)
        rng.shuffle(alpaca)
        total = sum(len(c) for c in convs.values())
        n_neg = min(int(total * cfg.alpaca_ratio), len(alpaca))
        caps = {split: [(s.file_name, s.caption) for s in by_split[split]] for split in SPLITS}
        start = 0
        for j, split in enumerate(SPLITS):
            share = n_neg - start if j == len(SPLITS) - 1 else round(n_neg * len(convs[split]) / max(total, 1))
            pool = full_pool if split == "test" else seen_pool
            neg_items[split] = alpaca[start : start + share]
            for item in neg_items[split]:
                convs[split].append(build_negative(item, caps[split], catalog, pool, rng))
            start += share
        report["negatives"] = n_neg

    # Training records as (conversation, cut) pairs: shuffled and capped, then rendered.
    cuts = _train_cuts(convs["train"], cfg, rng)
    rng.shuffle(cuts)
    if cfg.session_prompts:
        # The per-sample train path above has drawn from ``rng`` all the same, so val/test draw the
        # same numbers with or without the flag; the train split is rebuilt in sessions from its own rng.
        srng = random.Random(f"{cfg.seed}-sessions")
        sessions = build_sessions(by_split["train"], catalog, seen_pool, srng)
        # Train negatives come only with train conversations (their share is proportional to them).
        for item in neg_items["train"]:
            session = sessions[srng.randrange(len(sessions))]
            session.conversations.append(build_negative(item, [], catalog, seen_pool, srng, session=session))
        if cfg.history_share:
            report["with_history"] = add_history(sessions, cfg.history_share, srng)
        convs["train"] = [c for s in sessions for c in s.conversations]
        cuts = _train_cuts(convs["train"], cfg, srng)
        srng.shuffle(cuts)
        report["sessions"] = {
            "count": len(sessions),
            "mean_conversations": round(len(convs["train"]) / max(len(sessions), 1), 3),
        }
    train = [
        _messages(c) if k is None else train_record(c, k, cfg.chain_targets) for c, k in cuts[: cfg.max_num_samples]
    ]
    if cfg.rename_tools:
        renamed = rename_tools(train, cfg.rename_tools, cfg.seed)
        report["renamed_records"] = sum(a["instruction"] != b["instruction"] for a, b in zip(train, renamed))
        train = renamed
    if not train and not (convs["val"] or convs["test"]):
        raise DataError(
            f"{cfg.input_path}: no training record left after the split ({json.dumps(report['split'])}); nothing written"
        )
    files: dict[str, tuple[str, list]] = {"train": (cfg.output_path, train)} if train else {}
    if not train:  # an evaluation-only build (every image went to val/test): the training file is left alone
        logger.warning(f"no training records (every image went to val/test); {cfg.output_path} is not written")
    stale = []
    for split, default in (("val", "_val_seen.json"), ("test", "_test_unseen.json")):
        explicit = cfg.val_path if split == "val" else cfg.test_path
        path = explicit or cfg.derived(default)
        if not convs[split] and not explicit:
            if Path(path).exists():
                stale.append(path)
            continue
        files[split] = (path, [eval_record(c, rng.randrange(c.n_cuts), i) for i, c in enumerate(convs[split])])
    report["outputs"] = {k: {"path": p, "records": len(r)} for k, (p, r) in files.items()}
    if stale:
        report["stale_outputs"] = stale
    report["config"] = asdict(cfg)
    # One unit: train, val, test and the report are all replaced, or (on any error) none is.
    report_path = cfg.report_path or cfg.derived(".report.json")
    write_json_set([*((p, r, None) for p, r in files.values()), (report_path, report, 2)])
    return report


def _train_cuts(convs: list[Conversation], cfg: AnnotateConfig, rng: random.Random) -> list[tuple]:
    """``(conversation, step)`` of every training record (``--complement``), or ``(conversation, None)``
    for the raw message list of each conversation (without it)."""
    if cfg.complement:
        return [(c, k) for c in convs for k in record_cuts(c, cfg.complement_mode, rng)]
    return [(c, None) for c in convs]


def _messages(conv) -> list[dict]:
    """Published output without ``--complement``: the role/content message list of a conversation."""
    from g4t.prompts import human_response, tool_response

    msgs = [{"role": "system", "content": conv.prompt()}]
    for s in conv.steps:
        msgs.append({"role": "assistant", "content": tool_response(s.tool, s.tool_input)})
        msgs.append({"role": "user", "content": s.observation + "\n"})
    msgs.append({"role": "assistant", "content": human_response(conv.answer)})
    return msgs


def main(cfg: AnnotateConfig) -> int:
    """CLI entry: run, print a short summary; bad input exits 2 with a one-line message (outputs untouched)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = run(cfg)
    except (DataError, ValueError) as e:
        print(f"generate_annotations.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # cannot write an output (permissions, disk full): nothing was replaced
        print(f"generate_annotations.py: error: {e}; no output was replaced", file=sys.stderr)
        return 2
    p = report["parse"]
    print(f"parsed {p['parsed']} of {p['lines']} lines; skipped: {json.dumps(p['skipped'])}")
    if "renamed_records" in report:
        print(f"tools renamed in {report['renamed_records']} training records (--rename_tools)")
    if "dedup" in report:
        d = report["dedup"]
        print(f"dedup: {d['exact']} exact + {d['near']} near duplicates removed, {d['kept']} kept")
    if report["split"]["dropped_unseen"]:
        print(f"unseen-tool samples on train/val images dropped: {report['split']['dropped_unseen']}")
    for k, v in report["outputs"].items():
        print(f"{k}: {v['records']} records -> {v['path']}")
    for path in report.get("stale_outputs", []):
        print(f"warning: {path} is from an earlier run (this run has no such split); left as it was")
    return 0
