"""Conversations and records: parsed instructions -> tool-use chains -> training / eval samples.

Every piece of text is rendered through ``g4t.prompts`` (``render_training_prompt``,
``image_history``, ``tool_response``, ``human_response``, ``format_steps``), so the records hold
exactly the bytes the trainer trains on and the agent sends. The structure follows the published
``generate_annoations.py``: a random image name, the condition tool first when the tool has one,
observations ``Result saved as <img>`` / ``<img>`` (text tools: a placeholder), a final answer that
repeats the last observation, 2-5 tools offered per prompt, negatives from alpaca data.
``build_sessions`` groups one image's requests into sessions that share one prompt (tool list, image
name, history), so their records share the instruction text up to ``New input: ``.
All randomness comes from one ``random.Random`` so a seed reproduces the output.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from g4t.data.catalog import ToolInfo
from g4t.data.parse import EXAMPLE_IMAGE
from g4t.prompts import (
    TRAINING,
    Step,
    format_steps,
    human_response,
    image_history,
    render_training_prompt,
    tool_response,
)

__all__ = [
    "Conversation",
    "Sample",
    "Session",
    "build_conversation",
    "add_history",
    "build_negative",
    "build_sessions",
    "eval_record",
    "pick_sessions",
    "random_image_name",
    "record_cuts",
    "session_key",
    "tool_list",
    "train_record",
    "train_records",
]

_FOLDERS = ["image", "images", "examples", "cache", None]


@dataclass(frozen=True)
class Sample:
    """A parsed instruction bound to its image.

    Attributes:
        instruction: the user request.
        tool: the tool that solves it.
        args: arguments with ``example.jpg`` for the image.
        caption: the image caption ("" when unknown).
        file_name: the source image file name (e.g. a COCO name).
        image_id: the caption record id (split key).
        raw: the raw teacher line.
    """

    instruction: str
    tool: str
    args: tuple[str, ...]
    caption: str
    file_name: str
    image_id: str
    raw: str = ""


@dataclass
class Conversation:
    """One episode: the prompt, the executed steps and the final answer.

    Attributes:
        tools: tool names offered in the prompt, in prompt order.
        chat_history: the rendered ``{chat_history}``.
        user_input: the request.
        steps: tool calls with their observations, in order.
        answer: the final AI text (without the ``Thought/AI:`` wrapper).
        caption: caption shown in the history ("" if none).
        image: image name shown in the history ("" if none).
        file_name: source image file name ("" for negatives without an image).
        descriptions: ``{tool name: description}`` used to render the prompt.
    """

    tools: list[str]
    chat_history: str
    user_input: str
    steps: list[Step] = field(default_factory=list)
    answer: str = ""
    caption: str = ""
    image: str = ""
    file_name: str = ""
    descriptions: dict[str, str] = field(default_factory=dict)

    def prompt(self) -> str:
        """The system prompt (``PROMPT_FORMAT`` filled in)."""
        return render_training_prompt(
            [(n, self.descriptions[n]) for n in self.tools], self.chat_history, self.user_input
        )

    @property
    def n_cuts(self) -> int:
        """Number of assistant messages (one per step, plus the final answer)."""
        return len(self.steps) + 1

    def cut(self, k: int, chain: bool = False) -> tuple[str, str]:
        """``(instruction, output)`` with steps ``[0, k)`` in the instruction (published complement).

        ``chain``: a cut before two tool calls or more (a condition tool, then the tool it feeds) outputs
        all of them (``tool_chain``), as the published val/test ground truth has them; else the next step.
        """
        if not 0 <= k < self.n_cuts:
            raise IndexError(f"cut {k} out of range 0..{self.n_cuts - 1}")
        instruction = self.prompt() + format_steps(self.steps[:k])
        return instruction, self.tool_chain(k) if chain and len(self.steps) - k > 1 else self._assistant(k)

    def _assistant(self, k: int) -> str:
        if k < len(self.steps):
            return tool_response(self.steps[k].tool, self.steps[k].tool_input)
        return human_response(self.answer)

    def _calls(self, start: int, end: int) -> str:
        """Steps ``[start, end)`` as ground truth writes them: each call, then its observation on the next line."""
        return "".join(self._assistant(j) + self.steps[j].observation + "\n" for j in range(start, end))

    def remaining_chain(self, k: int) -> str:
        """Ground truth from step ``k`` to the end: calls, observations (on the next line) and answer."""
        return self._calls(k, len(self.steps)) + human_response(self.answer)

    def tool_chain(self, k: int) -> str:
        """The tool calls from step ``k`` on, as ``remaining_chain`` writes them, ending at the last call's
        ``Observation:`` (where the last tool would run)."""
        if not 0 <= k < len(self.steps):
            raise IndexError(f"step {k} out of range 0..{len(self.steps) - 1}")
        last = len(self.steps) - 1
        return self._calls(k, last) + self._assistant(last)


@dataclass
class Session:
    """One uploaded image and several requests about it: every conversation shares this prompt.

    Attributes:
        tools: tool names offered in every prompt of the session, in prompt order.
        image: image name shown in the history.
        caption: caption shown in the history (always shown, also for text-to-image requests).
        file_name: source image file name.
        conversations: the session's episodes (negatives that joined it included).
    """

    tools: list[str]
    image: str
    caption: str
    file_name: str
    conversations: list[Conversation] = field(default_factory=list)


def random_image_name(rng: random.Random, num_chars: int = 8) -> str:
    """A fresh image name as published: optional folder + 8 lowercase letters + ``.png``."""
    folder = rng.choice(_FOLDERS)
    name = "".join(rng.choices(string.ascii_lowercase, k=num_chars)) + ".png"
    return f"{folder}/{name}" if folder else name


def tool_list(target: str, catalog: dict[str, ToolInfo], pool: Sequence[str], rng: random.Random) -> list[str]:
    """The tools offered in one prompt: the target (+ its condition tool) and random others, 2-5 in all.

    Args:
        target: the tool the sample needs.
        catalog: tool facts.
        pool: candidate distractor tools (deterministic order).
        rng: random source.
    """
    required = [target]
    cond = catalog[target].condition
    if cond:
        required.append(cond)
    num = rng.randint(2, 5)
    others = [t for t in pool if t not in required]
    chosen = required + rng.sample(others, max(0, min(len(others), num - len(required))))
    rng.shuffle(chosen)
    return chosen


def _observation(info: ToolInfo, rng: random.Random) -> str:
    if info.observation is not None:
        return info.observation
    out = random_image_name(rng)
    return rng.choice([f"Result saved as {out}", out])


def _image_of(observation: str) -> str:
    return observation.removeprefix("Result saved as ")


def build_conversation(
    sample: Sample,
    catalog: dict[str, ToolInfo],
    pool: Sequence[str],
    rng: random.Random,
    *,
    session: Session | None = None,
) -> Conversation:
    """Turn one instruction into an episode (published ``generate_annotations`` structure).

    Args:
        sample: the parsed instruction.
        catalog: tool facts for every tool that may appear.
        pool: distractor tools for the prompt's tool list.
        rng: random source.
        session: a shared prompt (``build_sessions``): its tool list, image name and history are
            used as they are (nothing of them drawn); it must offer the sample's tool and condition
            tool. ``None``: drawn for this sample, as published.

    Raises:
        ValueError: the session does not offer a tool the conversation calls.
    """
    info = catalog[sample.tool]
    caption: str | None
    if session is None:
        image = random_image_name(rng)
        caption = sample.caption
        if not info.needs_image and rng.random() < 0.5:
            caption = None  # published: text-to-image requests come half of the time without an image
        tools = tool_list(sample.tool, catalog, pool, rng)
    else:
        missing = [t for t in (sample.tool, info.condition) if t and t not in session.tools]
        if missing:
            raise ValueError(f"session tools {session.tools} lack {missing} (request {sample.instruction!r})")
        image, caption, tools = session.image, session.caption, list(session.tools)
    args = [a.replace(EXAMPLE_IMAGE, image) for a in sample.args]
    history = image_history(image, caption) if caption is not None else ""
    steps: list[Step] = []
    if info.condition:
        cond = catalog[info.condition]
        obs = _observation(cond, rng)
        steps.append(Step(cond.name, image, obs))
        args = [a.replace(image, _image_of(obs)) for a in args]
    steps.append(Step(info.name, ", ".join(args), _observation(info, rng)))
    # Published quirk kept on purpose: the answer repeats the observation message, newline included.
    return Conversation(
        tools=tools,
        chat_history=history,
        user_input=sample.instruction,
        steps=steps,
        answer=steps[-1].observation + "\n",
        caption=caption or "",
        image=image if caption is not None else "",
        file_name=sample.file_name,
        descriptions={n: catalog[n].description for n in tools},
    )


def build_negative(
    item: dict,
    captions: Sequence[tuple[str, str]],
    catalog: dict[str, ToolInfo],
    pool: Sequence[str],
    rng: random.Random,
    *,
    session: Session | None = None,
) -> Conversation:
    """A no-tool sample from an alpaca item (published ``--insert-alpaca``).

    Args:
        item: ``{"instruction", "input", "output"}``.
        captions: ``(file_name, caption)`` pairs to borrow an image description from (half the time).
        catalog: tool facts.
        pool: tools to draw the prompt's tool list from.
        rng: random source.
        session: join this session's prompt (its tools, image name and history) instead of drawing
            a tool list and borrowing a caption; ``captions`` and ``pool`` are then unused.
    """
    instruction = " ".join(p for p in (item["instruction"].strip(), item.get("input", "").strip()) if p)
    caption: str | None
    if session is None:
        image = random_image_name(rng)
        file_name, caption = ("", None)
        if captions and rng.random() < 0.5:
            file_name, caption = captions[rng.randrange(len(captions))]
        target = sorted(pool)[rng.randrange(len(pool))]
        tools = tool_list(target, catalog, pool, rng)
    else:
        image, caption, file_name, tools = session.image, session.caption, session.file_name, list(session.tools)
    return Conversation(
        tools=tools,
        chat_history=image_history(image, caption) if caption is not None else "",
        user_input=instruction,
        answer=item["output"],
        caption=caption or "",
        image=image if caption is not None else "",
        file_name=file_name,
        descriptions={n: catalog[n].description for n in tools},
    )


def build_sessions(
    samples: Sequence[Sample], catalog: dict[str, ToolInfo], pool: Sequence[str], rng: random.Random
) -> list[Session]:
    """Group requests on the same image into sessions that share one prompt, as in a chat where one
    user asks several things about one uploaded image.

    Per image (``image_id``, in order of first appearance) the samples are shuffled and cut into
    sessions: each draws a budget of 2-5 tools (published: 2-5 tools offered per prompt) and takes
    the samples whose tool (with its condition tool) still fits in it; a tool already offered takes
    any further request that differs from the ones it has. The rest of the list is filled with
    random distractors from ``pool`` and shuffled once. One image name and the history line (caption
    always shown) are drawn per session; each conversation is then built by ``build_conversation``.

    Args:
        samples: parsed instructions (one split).
        catalog: tool facts.
        pool: distractor tools (deterministic order).
        rng: random source.
    """
    by_image: dict[str, list[Sample]] = {}
    for s in samples:
        by_image.setdefault(s.image_id, []).append(s)
    sessions: list[Session] = []
    for group in by_image.values():
        group = list(group)
        rng.shuffle(group)
        while group:
            budget = rng.randint(2, 5)
            tools: list[str] = []
            asked: set[tuple[str, str]] = set()
            members: list[Sample] = []
            rest: list[Sample] = []
            for s in group:
                need = [t for t in (s.tool, catalog[s.tool].condition) if t and t not in tools]
                if (s.tool, s.instruction) in asked or len(tools) + len(need) > budget:
                    rest.append(s)
                    continue
                tools += need
                asked.add((s.tool, s.instruction))
                members.append(s)
            group = rest  # the first sample always joins (it needs at most 2 tools), so this ends
            others = [t for t in pool if t not in tools]
            tools += rng.sample(others, max(0, min(len(others), budget - len(tools))))
            rng.shuffle(tools)
            session = Session(tools, random_image_name(rng), members[0].caption, members[0].file_name)
            session.conversations = [build_conversation(s, catalog, pool, rng, session=session) for s in members]
            sessions.append(session)
    return sessions


def add_history(sessions: Sequence[Session], share: float, rng: random.Random, keep: int = 2) -> int:
    """Give a ``share`` of each session's conversations (after its first) the chat history of a chat in
    progress: the session's image line, then the last one to ``keep`` exchanges before it in the session
    (``Human: request`` / ``AI: answer``, the demo memory's wording; it keeps the image and two exchanges).
    Negatives join a session last, so they become follow-ups ("thanks!") after tool results.
    Returns how many conversations got a history."""
    n = 0
    for session in sessions:
        for i, conv in enumerate(session.conversations):
            if i == 0 or rng.random() >= share:
                continue
            earlier = session.conversations[max(0, i - rng.randint(1, keep)) : i]
            exchanges = [TRAINING.exchange(c.user_input, c.answer.strip()) for c in earlier]
            conv.chat_history = TRAINING.chat_history(
                [conv.chat_history, *exchanges] if conv.chat_history else exchanges
            )
            n += 1
    return n


def session_key(record: dict) -> str:
    """A training record's prompt up to the request, or up to the image line when the chat history goes on
    (``add_history``): the same for every record of one session."""
    head = record["instruction"].split("\nNew input: ")[0]
    return head.split("\nAI: Received.\n")[0]


def pick_sessions(records: list[dict], n: int, rng: random.Random) -> list[dict]:
    """Whole sessions (records whose prompts agree up to the request) in random order, until ``n`` records."""
    sessions: dict[str, list[dict]] = {}
    for r in records:
        sessions.setdefault(session_key(r), []).append(r)
    order = sorted(sessions)
    rng.shuffle(order)
    chosen: list[dict] = []
    for key in order:
        if len(chosen) >= n:
            break
        chosen += sessions[key][: n - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def record_cuts(conv: Conversation, mode: str, rng: random.Random) -> list[int]:
    """The steps at which ``train_records`` cuts a conversation (draws from ``rng`` in ``"random"`` mode)."""
    return list(range(conv.n_cuts)) if mode == "all" else [rng.randrange(conv.n_cuts)]


def train_record(conv: Conversation, k: int, chain: bool = False) -> dict:
    """The training record ``{"instruction", "input": "", "output"}`` of a conversation cut at step ``k``
    (``chain``: ``Conversation.cut``'s)."""
    instruction, output = conv.cut(k, chain)
    return {"instruction": instruction, "input": "", "output": output}


def train_records(conv: Conversation, mode: str, rng: random.Random) -> list[dict]:
    """Training records ``{"instruction", "input": "", "output"}`` of one conversation.

    Args:
        conv: the episode.
        mode: ``"all"`` -- one record per step of the chain; ``"random"`` -- one record cut at a
            random step (the published ``--complement``).
        rng: random source.
    """
    return [train_record(conv, k) for k in record_cuts(conv, mode, rng)]


def eval_record(conv: Conversation, k: int, record_id: int) -> dict:
    """A val/test record in the published evaluation format, cut at step ``k``.

    ``output`` holds the whole remaining ground-truth chain (observations on the line after
    ``Observation:``); ``Action`` / ``Action Input`` list the remaining calls.
    """
    instruction = conv.prompt() + format_steps(conv.steps[:k])
    rest = conv.steps[k:]
    return {
        "id": record_id,
        "instruction": instruction,
        "input": "",
        "output": conv.remaining_chain(k),
        "Action": [s.tool for s in rest],
        "Action Input": [[s.tool_input] for s in rest],
        "user_input": conv.user_input,
        "caption": conv.caption,
        "filename": conv.file_name,
        "finished_previously": k > 0,
    }
