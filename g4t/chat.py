"""The demo's chat without a UI: sessions, uploads, turns streamed with a time limit, Stop and Clear.

``ChatBot`` takes and returns plain data: a ``Session`` (or None for a new one) in, ``(session,
messages)`` out, where ``messages`` is the chat in the Chatbot "messages" format (``role``,
``content``, optional ``metadata``; an image is ``{"path", "alt_text"}``). Each browser session
owns a ``Conversation``: its own memory and its own folder ``<image_root>/<session id>/image/``.

A turn's blocking work (decoding the upload, the model, the tools) runs in a worker thread of its
own; the caller's thread only follows its events, so it can give up at once (Stop, time limit):

* ``submit_stream`` yields the chat as it changes: the user's message at once, then the reply of
  the current step inside a pending "Used tool" thought (or, once it is an answer, as the answer
  message), each finished tool call, the final answer and the images.
* ``turn_timeout`` seconds after it started, a turn ends with a readable message; the worker closes
  the model's stream (generation stops at the next token) and exits after the step it is in.
* ``stop`` ends the running turn the same way, as does closing the ``submit_stream`` generator.

Errors become chat messages, never tracebacks; an upload that cannot be used is reported in the app's
words, nothing of it is kept, and the message sent with it is not answered.
"""

from __future__ import annotations

import logging
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g4t.agent import Agent, Conversation, ReplyDelta, StepDone, TurnDone, TurnResult, clip, parse_reply
from g4t.prompts import Step, format_steps
from g4t.tools.errors import PathError
from g4t.tools.images import ImageSource

__all__ = ["ChatBot", "Message", "Session"]

logger = logging.getLogger(__name__)

Message = dict[str, Any]  # one Chatbot message: {"role", "content", "metadata"?}

STOPPED = "Stopped."
BUSY = "Please wait: your previous message is still being answered."
_SETTLE_S = 2.0  # how long a new message waits for a stopped turn's worker to exit before it is refused
# The tool name of a reply still being written: the last ``Action:`` line so far (linear).
_PARTIAL_ACTION = re.compile(r"^[^\n]*?Action[ \t]*+:[ \t]*+([^\n]*+)", re.MULTILINE)


@dataclass(frozen=True)
class _UploadDone:
    path: str
    caption: str


@dataclass(frozen=True)
class _UploadFailed:
    text: str  # the message sent with the upload (shown, not answered)
    reason: str


@dataclass(frozen=True)
class _UserText:
    text: str


class _Signal:
    """A worker or ``stop`` telling the follower how the turn ended (``note`` = what the chat shows)."""

    def __init__(self, name: str, note: str | None) -> None:
        self.name, self.note = name, note

    def __repr__(self) -> str:
        return f"<{self.name}>"


_END = _Signal("end", None)  # the work is over
_FAILED = _Signal("failed", "Sorry, something went wrong; please try again.")
_STOP = _Signal("stop", "Stopped.")
_TIMED_OUT = _Signal("timed out", None)  # the note names the limit: ``ChatBot._timeout_note``


@dataclass
class Session:
    """One browser session: its conversation (memory + image folder) and the messages on screen.

    Attributes:
        id: random hex id, also the name of the session's folder.
        conversation: the agent conversation (own memory and workspace).
        messages: the chat shown in the page, in the Chatbot messages format.
        public_id: another random hex id, for what the session shows in public (URLs of its images).
    """

    id: str
    conversation: Conversation
    messages: list[Message] = field(default_factory=list)
    public_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards messages and turn
    turn: _Turn | None = field(default=None, repr=False)  # the turn being answered, if any


def _thought(title: str, text: str, status: str = "done") -> Message:
    """A collapsed assistant message (Chatbot renders ``metadata.title`` as a closed accordion)."""
    return {"role": "assistant", "content": text, "metadata": {"title": title, "status": status}}


def _image(path: Path, alt: str, role: str = "assistant") -> Message:
    return {"role": role, "content": {"path": str(path), "alt_text": alt}}


def _fence(text: str) -> str:
    """Show model / tool text verbatim (no markdown interpretation) inside a thought."""
    return "```text\n" + text.replace("```", "'''").strip("\n") + "\n```"


def _step_text(step: Step) -> str:
    return _fence(format_steps([step], "training"))


def _tool_title(number: int, tool: str) -> str:
    return f"Used tool {number}: {tool[:100]}"


class _Worker:
    """Runs a turn's events (a generator doing the blocking work) in a daemon thread, into a queue.

    The generator is closed once ``cancel`` is called or ``deadline`` (``time.monotonic``, or None)
    passes, checked before each event: the model's stream is then closed, so generation stops at the
    next token; a tool already running finishes first. The last item queued is a ``_Signal``.
    """

    def __init__(self, work: Iterator[object], deadline: float | None) -> None:
        self.events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work, deadline), daemon=True, name="g4t-turn")
        self._thread.start()

    def _run(self, work: Iterator[object], deadline: float | None) -> None:
        end = _END
        try:
            with closing(work):
                while not self.cancelled.is_set():
                    if deadline is not None and time.monotonic() >= deadline:
                        end = _TIMED_OUT
                        break
                    event = next(work, _END)
                    if event is _END:
                        break
                    self.events.put(event)
        except Exception:  # the turn's generator does not raise; the follower hears of it anyway
            logger.exception("turn worker failed")
            end = _FAILED
        finally:
            self.events.put(end)

    def cancel(self) -> None:
        """Close the work at its next event and wake the follower."""
        self.cancelled.set()
        self.events.put(_STOP)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _Turn:
    """One turn of a session: its worker, and how its events change the session's messages.

    Every change happens under ``session.lock``; ``finish`` is idempotent (the first caller's note wins).
    """

    def __init__(self, session: Session, worker: _Worker, deadline: float | None) -> None:
        self.session = session
        self.worker = worker
        self.deadline = deadline
        self.finished = False
        self.steps_shown = 0
        self.pending: Message | None = None  # the thought of the step being written
        self.answer: Message | None = None  # the answer being written
        self.reply: ReplyDelta | None = None  # the newest reply text, shown at the next refresh

    def apply(self, event: object) -> None:
        """Show one event of the worker (caller holds ``session.lock``)."""
        messages = self.session.messages
        workspace = self.session.conversation.workspace
        if isinstance(event, _UploadDone):
            messages.append(_image(workspace.root / event.path, event.path, role="user"))
            messages.append(
                _thought(f"Received {event.path}", f"Saved as `{event.path}`. Description: {event.caption}")
            )
            messages.append({"role": "assistant", "content": "Received."})
        elif isinstance(event, _UploadFailed):
            if event.text:
                messages.append({"role": "user", "content": event.text})
            messages.append({"role": "assistant", "content": event.reason})
        elif isinstance(event, _UserText):
            messages.append({"role": "user", "content": event.text})
        elif isinstance(event, ReplyDelta):
            self.reply = event  # parsed and shown at the next refresh (``show_reply``), not per token
        elif isinstance(event, StepDone):
            self._drop_partial()
            self.steps_shown += 1
            messages.append(_thought(_tool_title(self.steps_shown, event.step.tool), _step_text(event.step)))
        elif isinstance(event, TurnDone):
            self._show_result(event.result)

    def show_reply(self) -> None:
        """Show the newest reply text (caller holds ``session.lock``): in the pending thought of its
        step, or as the answer once it is one."""
        event, self.reply = self.reply, None
        if event is None:
            return
        parsed = parse_reply(event.text)
        workspace = self.session.conversation.workspace
        if parsed.kind == "final":  # the answer, as it comes
            if self.pending is not None:
                self.session.messages.remove(self.pending)
                self.pending = None
            if self.answer is None:
                self.answer = {"role": "assistant", "content": ""}
                self.session.messages.append(self.answer)
            self.answer["content"] = workspace.relativize(parsed.answer)
            return
        number = self.steps_shown + 1
        tool = parsed.tool if parsed.kind == "tool" else _partial_tool(event.text)
        if self.pending is None:
            self.pending = _thought("", "", status="pending")
            self.session.messages.append(self.pending)
        self.pending["metadata"]["title"] = _tool_title(number, tool) if tool else f"Thinking (step {number})"
        self.pending["content"] = _fence(workspace.relativize(event.text))

    def snapshot(self) -> list[Message]:
        """The chat now, with copies of the messages still being written (caller holds ``session.lock``)."""
        live = (self.pending, self.answer)
        return [
            {**m, "metadata": dict(m["metadata"])} if m is live[0] else dict(m) if m is live[1] else m
            for m in self.session.messages
        ]

    def _drop_partial(self) -> None:
        self.reply = None
        for message in (self.pending, self.answer):
            if message is not None and message in self.session.messages:
                self.session.messages.remove(message)
        self.pending = self.answer = None

    def _show_result(self, result: TurnResult) -> None:
        self._drop_partial()
        messages = self.session.messages
        workspace = self.session.conversation.workspace
        for step in result.steps[self.steps_shown :]:  # a loop without live events shows its steps now
            self.steps_shown += 1
            messages.append(_thought(_tool_title(self.steps_shown, step.tool), _step_text(step)))
        messages.append({"role": "assistant", "content": result.readable() or "(no answer)"})
        shown = list(result.images)
        shown += [p for p in workspace.find_images(result.answer) if p not in shown]
        messages += [_image(path, workspace.relative(path)) for path in shown]

    def finish(self, note: str | None, cancel: bool = True) -> None:
        """End the turn (caller holds ``session.lock``): stop the worker (unless it is done: ``cancel``
        False), settle what was being written, add ``note``. Does nothing if the turn already ended."""
        if self.finished:
            return
        self.finished = True
        if cancel:
            self.worker.cancel()
        self.show_reply()
        if self.pending is not None:
            self.pending["metadata"]["status"] = "done"
        if note:
            self.session.messages.append({"role": "assistant", "content": note})


def _partial_tool(text: str) -> str:
    """The tool named on the last ``Action:`` line of a reply still being written ("" if none)."""
    found = None
    for found in _PARTIAL_ACTION.finditer(text):
        pass
    return found[1].strip().strip("\"'`") if found else ""


class ChatBot:
    """The demo's logic without the UI: sessions, uploads, streamed turns, Stop, Clear.

    Args:
        agent: the shared agent (LLM, tools, prompt settings).
        image_root: output root; each session writes only under ``image_root/<session id>/``.
        keep_last_n: exchanges of history each conversation keeps in the prompt.
        keep_files: keep a session's folder when the session ends (default: delete it).
        turn_timeout: seconds a turn may take (upload, model and tools) before it is stopped with a
            readable message; None or 0: no limit.
        upload_root: the folder of the web server's temporary uploads; an upload from it that cannot
            be used is deleted there.
        settle_s: a turn that ends within this many seconds is shown in one update after the user's
            message (each update makes a browser redraw the whole chat: fewer is faster in long chats).
        refresh_s: shortest interval between two later updates while the turn runs (text streaming).
    """

    def __init__(
        self,
        agent: Agent,
        image_root: str | Path,
        keep_last_n: int = 3,
        keep_files: bool = False,
        turn_timeout: float | None = 300.0,
        upload_root: str | Path | None = None,
        settle_s: float = 0.5,
        refresh_s: float = 0.1,
    ) -> None:
        if turn_timeout is not None and turn_timeout < 0:
            raise ValueError(f"turn_timeout must be >= 0 seconds (0 = no limit), got {turn_timeout}")
        if refresh_s < 0 or settle_s < 0:
            raise ValueError(f"settle_s and refresh_s must be >= 0, got {settle_s} and {refresh_s}")
        self.agent = agent
        self.image_root = Path(image_root).resolve()
        self.keep_last_n = keep_last_n
        self.keep_files = keep_files
        self.turn_timeout = turn_timeout or None
        self.upload_root = Path(upload_root).resolve() if upload_root is not None else None
        self.settle_s = settle_s
        self.refresh_s = refresh_s

    # -- sessions ---------------------------------------------------------------------------------
    def new_session(self) -> Session:
        """A session with a fresh id, memory and folder."""
        session_id = uuid.uuid4().hex
        return Session(session_id, self.agent.conversation(self.image_root / session_id, self.keep_last_n))

    def _session(self, session: Session | None) -> Session:
        return session if isinstance(session, Session) else self.new_session()

    # -- handlers (plain data in, plain data out) ---------------------------------------------
    def submit_stream(
        self, session: Session | None, text: str, image: ImageSource | None = None
    ) -> Iterator[tuple[Session, list[Message]]]:
        """What Enter and the Submit button do, as the chat changes: add the image (if any), then
        answer the text (if any). Yields ``(session, messages)``, each time a new list; the last one
        is the chat after the turn.

        As in the published demo, a message sent together with an image is prefixed with the image's
        file name, so the model knows which image the request is about. Closing the generator stops
        the turn, as ``stop`` does.
        """
        session = self._session(session)
        text = (text or "").strip()
        previous = session.turn
        if previous is not None and previous.finished and previous.worker.alive:
            previous.worker.join(_SETTLE_S)  # a stopped turn's model ends at its next token
        with session.lock:
            busy = self._busy(session)
            if busy or (image is None and not text):
                yield (
                    session,
                    [*session.messages, {"role": "assistant", "content": BUSY}] if busy else list(session.messages),
                )
                return
            if image is None:
                session.messages.append({"role": "user", "content": text})
            deadline = time.monotonic() + self.turn_timeout if self.turn_timeout else None
            turn = session.turn = _Turn(session, _Worker(self._work(session, text, image), deadline), deadline)
            snapshot = turn.snapshot()
        try:
            yield session, snapshot
            yield from self._follow(turn)
        finally:
            with session.lock:
                turn.finish(STOPPED)  # closed early (Stop, the page went away); nothing after the end

    def submit(
        self, session: Session | None, text: str, image: ImageSource | None = None
    ) -> tuple[Session, list[Message]]:
        """``submit_stream`` to the end: ``(session, messages)`` after the turn."""
        result = None
        for result in self.submit_stream(session, text, image):
            pass
        return result

    def run_image(self, session: Session | None, image: ImageSource) -> tuple[Session, list[Message]]:
        """Add an uploaded image (a file path, its bytes or a PIL image) to the conversation and the chat."""
        return self.submit(session, "", image)

    def run_text(self, session: Session | None, text: str) -> tuple[Session, list[Message]]:
        """Answer one user message; the reasoning steps are added as collapsed thoughts and the
        images produced by tools are shown inline after the answer."""
        return self.submit(session, text, None)

    def stop(self, session: Session | None) -> tuple[Session, list[Message]]:
        """Stop the session's running turn, if any: the model stops at its next token and the chat
        says so at once (a tool already running finishes in the background, its result unused)."""
        session = self._session(session)
        with session.lock:
            if session.turn is not None:
                session.turn.finish(STOPPED)
            return session, list(session.messages)

    def clear(self, session: Session | None) -> tuple[Session, list[Message]]:
        """Stop the running turn and forget the conversation (memory and chat); the session keeps
        its id and folder."""
        session, _ = self.stop(session)
        if session.turn is not None:
            session.turn.worker.join(_SETTLE_S)  # its memory entry lands before the clear
        with session.lock:
            session.conversation.clear()
            session.messages = []
            return session, []

    def end_session(self, session: Session | None) -> None:
        """Called when Gradio drops a session (an hour after its tab closed): stop its turn and
        delete its folder. Nothing is deleted with ``keep_files``, and only a folder directly under
        ``image_root``."""
        if not isinstance(session, Session):
            return
        self.stop(session)
        if self.keep_files:
            return
        folder = (self.image_root / session.id).resolve()
        if folder.parent == self.image_root and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("deleted the folder of ended session %s", session.id[:8])

    # -- internals --------------------------------------------------------------------------------
    def _busy(self, session: Session) -> bool:
        """True while the previous turn's worker runs (also after a stop, until its tool returns).
        A turn whose follower went away is shown as it ended (caller holds ``session.lock``)."""
        turn = session.turn
        if turn is None:
            return False
        if turn.worker.alive and (not turn.finished or turn.worker.cancelled.is_set()):
            return True
        if not turn.finished:
            self._drain(turn)
        return False

    def _drain(self, turn: _Turn) -> None:
        """Apply what a finished worker left in its queue (caller holds ``session.lock``)."""
        while not turn.finished:
            try:
                event = turn.worker.events.get_nowait()
            except queue.Empty:
                turn.finish(None, cancel=False)
                return
            self._apply(turn, event)

    def _apply(self, turn: _Turn, event: object) -> None:
        """Show a worker's event; a ``TurnDone`` or a signal from the worker ends the turn."""
        if isinstance(event, _Signal):
            turn.finish(self._timeout_note() if event is _TIMED_OUT else event.note, cancel=event is _STOP)
        else:
            turn.apply(event)
            if isinstance(event, TurnDone):
                turn.finish(None, cancel=False)

    def _timeout_note(self) -> str:
        return (
            f"Sorry, this took longer than the time limit of {self.turn_timeout:g} s and was stopped. "
            "Try a simpler request, or ask the operator to raise --turn_timeout."
        )

    def _work(self, session: Session, text: str, image: ImageSource | None) -> Iterator[object]:
        """The turn's blocking part, run by the worker: the upload, then the agent's events."""
        conversation = session.conversation
        path = None
        if image is not None:
            try:
                path, caption = conversation.add_image(image)
            except Exception as e:  # an unusable upload is reported in the chat, never raised
                yield _UploadFailed(text, self._upload_error(conversation, image, e, with_text=bool(text)))
                return
            yield _UploadDone(path, caption)
            if text:
                yield _UserText(text)
        if text:
            yield from conversation.run_stream(f"{path} {text}" if path and path not in text else text)

    def _upload_error(self, conversation: Conversation, image: ImageSource, error: Exception, with_text: bool) -> str:
        if isinstance(error, PathError):  # ImageError: the app's own words, no server path
            reason = str(error)
        else:
            logger.error("image upload failed", exc_info=error)
            reason = f"{error.__class__.__name__}: {conversation.workspace.redact(str(error))}"
        self._discard_upload(image)
        note = " Your message was not answered: send it again with another image." if with_text else ""
        return f"Sorry, I could not use that image: {clip(reason, 300, 'upload error').rstrip('.')}.{note}"

    def _discard_upload(self, image: ImageSource) -> None:
        """Delete a failed upload if it is a temporary file under ``upload_root`` (and its folder, if empty)."""
        if self.upload_root is None or not isinstance(image, str | Path):
            return
        path = Path(image).resolve()
        if path.is_relative_to(self.upload_root) and path.is_file():
            path.unlink(missing_ok=True)
            try:
                if path.parent != self.upload_root:
                    path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
            except OSError:
                pass

    def _follow(self, turn: _Turn) -> Iterator[tuple[Session, list[Message]]]:
        """Show the worker's events and yield the chat when it changed: not before ``settle_s``, then at
        most every ``refresh_s``, the end of the turn at once. End the turn at its deadline even if
        the worker is stuck in a tool. ``stop`` wakes it through the worker's queue."""
        session, worker = turn.session, turn.worker
        next_at = time.monotonic() + self.settle_s
        dirty = False
        while True:
            now = time.monotonic()
            wait = max(0.0, next_at - now) if dirty else None
            if turn.deadline is not None:
                left = max(0.0, turn.deadline - now)
                wait = left if wait is None else min(wait, left)
            try:
                event = worker.events.get(timeout=wait)
            except queue.Empty:
                event = None
            with session.lock:
                if not turn.finished:
                    if event is None and turn.deadline is not None and time.monotonic() >= turn.deadline:
                        turn.finish(self._timeout_note())  # the worker is stuck (in a tool): leave it behind
                    elif event is not None:
                        self._apply(turn, event)
                        dirty = True
                if not turn.finished and (not dirty or time.monotonic() < next_at):
                    continue
                turn.show_reply()
                snapshot, done = turn.snapshot(), turn.finished
            yield session, snapshot
            next_at, dirty = time.monotonic() + self.refresh_s, False
            if done:
                return
