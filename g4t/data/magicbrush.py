"""MagicBrush edit sessions -> chained ``Edit Image Using Text`` samples (the EFE data, rebuilt).

Every turn of every session becomes one conversation; none is dropped. Turn ``k`` edits the image
produced by turn ``k - 1``: the chat history announces the session's input image with its global
caption (as text, not a dict) and replays the earlier turns (``Human: <instruction>`` /
``AI: <result image>``), and the tool call takes the previous output. File names are the real
MagicBrush names under one folder (``{image_dir}/{session}/{file}``), so the image in the history,
the ``Action Input`` and the observation always agree and point at files that exist in the
MagicBrush release. Instructions are kept whole (the EFE scripts cut their first 3 characters).
"""

from __future__ import annotations

import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from g4t.cli import arg
from g4t.data.build import Conversation, eval_record, tool_list, train_records
from g4t.data.catalog import tool_catalog
from g4t.data.io import DataError, read_json, write_json_set
from g4t.interrupts import Interrupted, signals_deferred, signals_raise_interrupted
from g4t.prompts import Step

__all__ = ["MagicBrushConfig", "MagicBrushReport", "convert", "main"]


@dataclass
class MagicBrushConfig:
    """Options of ``scripts/magicbrush_to_instructions.py``."""

    data_dir: str = arg(help="MagicBrush split folder with edit_sessions.json and global_descriptions.json.")
    output_path: str = arg(help="Training records (JSON list of instruction/input/output).")
    eval_path: str | None = arg(None, help="Also write every turn in the evaluation format (id, Action, ...).")
    image_dir: str = arg("magicbrush/images", help="Folder prefix of image names: {image_dir}/{session}/{file}.")
    tool: str = arg("Edit Image Using Text", help="Editing tool the samples call (an image+text tool of the registry).")
    complement_mode: str = arg(
        "all", help="all: a training record per step (call, then answer); random: one random step."
    )
    seed: int = arg(42, help="Seed of the tool lists and observation wording.")
    report_path: str | None = arg(None, help="Report JSON (default: <output stem>.report.json).")

    def __post_init__(self) -> None:
        if self.complement_mode not in ("all", "random"):
            raise ValueError(f"--complement_mode must be 'all' or 'random', got {self.complement_mode!r}")


@dataclass
class MagicBrushReport:
    """Counts of one conversion.

    Attributes:
        sessions: sessions read.
        turns: turns read.
        conversations: turns converted (one conversation each).
        lost: turns read but not converted (always 0; kept to make the claim checkable).
        turns_per_session: histogram ``{turns: sessions}``.
        chained_turns: turns whose input is the previous turn's output.
        train_records: training records written.
        eval_records: evaluation records written.
    """

    sessions: int = 0
    turns: int = 0
    conversations: int = 0
    lost: int = 0
    turns_per_session: dict[str, int] = field(default_factory=dict)
    chained_turns: int = 0
    train_records: int = 0
    eval_records: int = 0


def _load(data_dir: Path) -> tuple[dict, dict]:
    sessions = read_json(data_dir / "edit_sessions.json")
    captions = read_json(data_dir / "global_descriptions.json")
    if not isinstance(sessions, dict) or not isinstance(captions, dict):
        raise DataError(f"{data_dir}: edit_sessions.json and global_descriptions.json must be JSON objects")
    if not sessions:
        raise DataError(f"{data_dir / 'edit_sessions.json'}: no edit sessions (nothing to convert)")
    for sid, turns in sessions.items():
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{data_dir / 'edit_sessions.json'}: session {sid!r} must be a non-empty list of turns")
        for k, t in enumerate(turns):
            for key in ("input", "output", "instruction"):
                if not isinstance(t, dict) or not isinstance(t.get(key), str) or not t.get(key).strip():
                    raise DataError(
                        f"{data_dir / 'edit_sessions.json'}: session {sid!r} turn {k}: missing field {key!r}"
                    )
        first = turns[0]["input"]
        if first not in captions.get(sid, {}):
            raise DataError(f"{data_dir / 'global_descriptions.json'}: session {sid!r} has no caption for {first!r}")
    return sessions, captions


def convert(cfg: MagicBrushConfig) -> tuple[list[Conversation], list[str], MagicBrushReport]:
    """All turns as conversations (with ``"<session>-turn<k>"`` ids) and the report."""
    sessions, captions = _load(Path(cfg.data_dir))
    catalog = tool_catalog([cfg.tool])
    info = catalog[cfg.tool]
    if not info.needs_image or info.n_args != 2:
        raise ValueError(f"--tool {cfg.tool!r} must take (image, text); it takes {info.n_args} argument(s)")
    full = tool_catalog(list(dict.fromkeys([cfg.tool, *_default_pool()])))
    pool = list(full)
    rng = random.Random(cfg.seed)
    report = MagicBrushReport(sessions=len(sessions))
    convs, ids = [], []
    hist: dict[str, int] = {}
    for sid, turns in sessions.items():
        hist[str(len(turns))] = hist.get(str(len(turns)), 0) + 1
        report.turns += len(turns)
        source = f"{cfg.image_dir}/{sid}/{turns[0]['input']}"
        caption = " ".join(captions[sid][turns[0]["input"]].split())
        earlier: list[tuple[str, str]] = []  # (instruction, answer) of previous turns
        current = source
        for k, turn in enumerate(turns):
            if k > 0 and turn["input"] == turns[k - 1]["output"]:
                report.chained_turns += 1
            elif k > 0:
                current = f"{cfg.image_dir}/{sid}/{turn['input']}"
            instruction = " ".join(turn["instruction"].split())
            output = f"{cfg.image_dir}/{sid}/{turn['output']}"
            observation = rng.choice([f"Result saved as {output}", output])
            history = _history(source, caption, earlier)
            tools = tool_list(cfg.tool, full, pool, rng)
            convs.append(
                Conversation(
                    tools=tools,
                    chat_history=history,
                    user_input=instruction,
                    steps=[Step(cfg.tool, f"{current}, {instruction}", observation)],
                    answer=observation + "\n",
                    caption=caption,
                    image=source,
                    file_name=turns[0]["input"],
                    descriptions={n: full[n].description for n in tools},
                )
            )
            ids.append(f"{sid}-turn{k + 1}")
            earlier.append((instruction, observation))
            current = output
    report.turns_per_session = dict(sorted(hist.items()))
    report.conversations = len(convs)
    report.lost = report.turns - report.conversations
    return convs, ids, report


def _default_pool() -> list[str]:
    from g4t.data.catalog import PUBLISHED_TRAINING_TOOLS

    return list(PUBLISHED_TRAINING_TOOLS)


def _history(source: str, caption: str, earlier: list[tuple[str, str]]) -> str:
    from g4t.agent import Memory

    memory = Memory(keep_last_n=len(earlier) + 1)
    memory.add_image(source, caption)
    for human, ai in earlier:
        memory.add(human, ai)
    return memory.render("training")


def main(cfg: MagicBrushConfig) -> int:
    """CLI entry: convert, write records and the report, print the counts.

    Exit status: 0 done; 2 bad input (one line on stderr, outputs untouched); 130 / 143 interrupted by
    SIGINT / SIGTERM. The outputs are written only once everything is converted, all replaced together
    or none, so an interrupted or failed run leaves the files of an earlier run as they were; a signal
    that arrives while they are written lets the writing finish (a second or two).
    """
    try:
        with signals_raise_interrupted():
            print(f"converting {cfg.data_dir} ...", file=sys.stderr, flush=True)
            convs, ids, report = convert(cfg)
            rng = random.Random(cfg.seed + 1)
            train = [r for c in convs for r in train_records(c, cfg.complement_mode, rng)]
            evals = None
            if cfg.eval_path:
                evals = [
                    eval_record(c, 0, i) | {"session_turn": sid}
                    for i, (c, sid) in enumerate(zip(convs, ids, strict=True))
                ]
    except (DataError, ValueError) as e:
        print(f"magicbrush_to_instructions.py: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"{e}: stopped before writing; {cfg.output_path} left as it was", file=sys.stderr)
        return e.exit_status
    out = Path(cfg.output_path)
    report.train_records = len(train)
    files = [(cfg.output_path, train, None)]
    if evals is not None:
        report.eval_records = len(evals)
        files.append((cfg.eval_path, evals, None))
    files.append((cfg.report_path or out.with_name(out.stem + ".report.json"), asdict(report), 2))
    with signals_deferred() as pending:
        write_json_set(files)  # all replaced together, or none
    print(
        f"{report.sessions} sessions, {report.turns} turns -> {report.conversations} conversations "
        f"({report.chained_turns} chained on the previous output), {report.lost} lost; "
        f"{report.train_records} training records -> {cfg.output_path}"
        + (f"; {report.eval_records} eval records -> {cfg.eval_path}" if cfg.eval_path else "")
    )
    if pending.signum is not None:
        return Interrupted(pending.signum).exit_status
    return 0 if report.lost == 0 else 1
