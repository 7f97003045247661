"""The Gradio demo: a chat in which the LLM uses visual tools on the user's images.

Three layers, so that each can be tested on its own:

* ``ChatBot`` -- plain Python, no gradio. ``run_image`` / ``run_text`` / ``clear`` take a
  ``Session`` (or None) and plain values and return ``(session, messages)``, where ``messages`` is
  the chat as a list of dicts in the Chatbot "messages" format (``role``, ``content``, optional
  ``metadata``). Each browser session owns a ``Conversation``: its own memory and its own image
  folder ``<image_root>/<session id>/image/``. Errors become chat messages, never tracebacks.
* ``build_demo(bot) -> gr.Blocks`` -- the page: chat with inline images, an image box, a text box
  (Enter and the Submit button run the same handler), Clear, per-session ``gr.State``. The
  reasoning steps of each answer are collapsed "thought" messages (``metadata.title``).
* ``launch_demo`` / ``main`` -- queue for concurrent users and serve; ``main`` also loads the model
  and exits with status 2 and a clear message (no traceback) when it cannot be loaded.

gradio is imported inside the functions that need it only.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from g4t.agent import Agent, Conversation, TurnResult, clip
from g4t.prompts import Step

__all__ = ["ChatBot", "Session", "build_demo", "launch_demo", "main"]

logger = logging.getLogger(__name__)

Message = dict[str, Any]  # one Chatbot message: {"role", "content", "metadata"?}

_TITLE = "GPT4Tools"
_INTRO = (
    "Upload an image, then ask about it or ask for an edit (for example *detect the edges of this image*). "
    "The assistant decides which visual tool to use; expand **Used tool** to see its reasoning."
)


@dataclass
class Session:
    """One browser session: its conversation (memory + image folder) and the messages on screen.

    Attributes:
        id: random hex id, also the name of the session's folder.
        conversation: the agent conversation (own memory and workspace).
        messages: the chat shown in the page, in the Chatbot messages format.
    """

    id: str
    conversation: Conversation
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _thought(title: str, text: str) -> Message:
    """A collapsed assistant message (Chatbot renders ``metadata.title`` as a closed accordion)."""
    return {"role": "assistant", "content": text, "metadata": {"title": title, "status": "done"}}


def _image(path: Path, alt: str, role: str = "assistant") -> Message:
    return {"role": role, "content": {"path": str(path), "alt_text": alt}}


def _fence(text: str) -> str:
    """Show model / tool text verbatim (no markdown interpretation) inside a thought."""
    return "```text\n" + text.replace("```", "'''").strip("\n") + "\n```"


def _step_text(step: Step) -> str:
    return _fence(
        f"Thought: Do I need to use a tool? Yes\nAction: {step.tool}\nAction Input: {step.tool_input}\n"
        f"Observation: {step.observation}"
    )


class ChatBot:
    """The demo's logic without the UI: sessions, uploads, turns, clearing.

    Args:
        agent: the shared agent (LLM, tools, prompt settings).
        image_root: output root; each session writes only under ``image_root/<session id>/``.
        keep_last_n: exchanges of history each conversation keeps in the prompt.
        keep_files: keep a session's folder when the session ends (default: delete it).
    """

    def __init__(self, agent: Agent, image_root: str | Path, keep_last_n: int = 3, keep_files: bool = False) -> None:
        self.agent = agent
        self.image_root = Path(image_root).resolve()
        self.keep_last_n = keep_last_n
        self.keep_files = keep_files

    # -- sessions ---------------------------------------------------------------------------------
    def new_session(self) -> Session:
        """A session with a fresh id, memory and folder (created on first use, not at import)."""
        session_id = uuid.uuid4().hex
        return Session(session_id, self.agent.conversation(self.image_root / session_id, self.keep_last_n))

    def _session(self, session: Session | None) -> Session:
        return session if isinstance(session, Session) else self.new_session()

    # -- handlers (plain data in, plain data out) ---------------------------------------------
    def run_image(self, session: Session | None, image: Image.Image | str | Path) -> tuple[Session, list[Message]]:
        """Add an uploaded image (PIL image or file path) to the conversation and the chat.

        Returns:
            ``(session, messages)``.
        """
        session = self._session(session)
        with session.lock:
            self._add_image(session, image)
        return session, session.messages

    def run_text(self, session: Session | None, text: str) -> tuple[Session, list[Message]]:
        """Answer one user message; the reasoning steps are added as collapsed thoughts and the
        images produced by tools are shown inline after the answer."""
        session = self._session(session)
        text = (text or "").strip()
        if not text:
            return session, session.messages
        with session.lock:
            session.messages.append({"role": "user", "content": text})
            self._answer(session, text)
        return session, session.messages

    def submit(
        self, session: Session | None, text: str, image: Image.Image | str | Path | None = None
    ) -> tuple[Session, list[Message]]:
        """What Enter and the Submit button do: add the image (if any), then answer the text (if any).

        As in the published demo, a message sent together with an image is prefixed with the image's
        file name, so the model knows which image the request is about.
        """
        session = self._session(session)
        text = (text or "").strip()
        with session.lock:
            path = self._add_image(session, image) if image is not None else None
            if text:
                session.messages.append({"role": "user", "content": text})
                prompt = f"{path} {text}" if path and path not in text else text
                self._answer(session, prompt)
        return session, session.messages

    def clear(self, session: Session | None) -> tuple[Session, list[Message]]:
        """Forget the conversation (memory and chat); the session keeps its id and folder."""
        session = self._session(session)
        with session.lock:
            session.conversation.clear()
            session.messages = []
        return session, session.messages

    def end_session(self, session: Session | None) -> None:
        """Called when Gradio drops a session (an hour after its tab closed): delete its folder.

        Nothing is deleted with ``keep_files``, and only a folder directly under ``image_root``.
        """
        if self.keep_files or not isinstance(session, Session):
            return
        folder = (self.image_root / session.id).resolve()
        if folder.parent == self.image_root and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("deleted the folder of ended session %s", session.id[:8])

    # -- internals --------------------------------------------------------------------------------
    def _add_image(self, session: Session, image: Image.Image | str | Path) -> str | None:
        try:
            if not isinstance(image, Image.Image):
                with Image.open(image) as opened:
                    image = opened.copy()
            path, caption = session.conversation.add_image(image)
        except Exception as e:  # an unreadable upload must not break the page
            logger.exception("image upload failed")
            # the error may name the upload's server path (Gradio's cache): never show it
            reason = clip(session.conversation.workspace.redact(str(e)) or e.__class__.__name__, 300, "upload error")
            session.messages.append({"role": "assistant", "content": f"Sorry, I could not read that image ({reason})."})
            return None
        workspace = session.conversation.workspace
        session.messages.append(_image(workspace.root / path, path, role="user"))
        session.messages.append(_thought(f"Received {path}", f"Saved as `{path}`. Description: {caption}"))
        session.messages.append({"role": "assistant", "content": "Received."})
        return path

    def _answer(self, session: Session, text: str) -> None:
        workspace = session.conversation.workspace
        try:
            result = session.conversation.run(text)
            shown = list(result.images)
            shown += [p for p in workspace.find_images(result.answer) if p not in shown]
            images = [(path, workspace.relative(path)) for path in shown]
        except Exception as e:  # Conversation.run does not raise; this is the last line of defence
            logger.exception("turn failed")
            reason = clip(workspace.redact(str(e)), 300, "turn error")
            result, images = TurnResult(f"Sorry, something went wrong: {e.__class__.__name__}: {reason}"), []
        for i, step in enumerate(result.steps, 1):
            session.messages.append(_thought(f"Used tool {i}: {step.tool[:100]}", _step_text(step)))
        session.messages.append({"role": "assistant", "content": result.answer or "(no answer)"})
        for path, name in images:
            session.messages.append(_image(path, name))


# ---------------------------------------------------------------------------------------------
# Gradio
# ---------------------------------------------------------------------------------------------


def build_demo(bot: ChatBot, title: str = _TITLE):
    """The page for ``bot`` as a ``gr.Blocks`` (not launched).

    Args:
        bot: the chat logic.
        title: page title and heading.
    """
    import gradio as gr

    def on_submit(session, text, image):
        session, messages = bot.submit(session, text, image)
        return session, list(messages), "", None

    def on_clear(session):
        session, messages = bot.clear(session)
        return session, list(messages), "", None

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\n{_INTRO}")
        # a Session, created by the first handler call of each browser session; Gradio calls
        # end_session when it drops the state (an hour after the tab closed)
        # (a plain function, not the bound method: Gradio deep-copies the page config on every page
        # load, and a bound method would drag the whole bot, model weights included, into that copy)
        state = gr.State(None, delete_callback=lambda session: bot.end_session(session))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240):
                image = gr.Image(
                    type="pil", sources=["upload", "clipboard"], label="Image", height=260, elem_id="g4t-image"
                )
                submit = gr.Button("Submit", variant="primary", elem_id="g4t-submit")
                clear = gr.Button("Clear", elem_id="g4t-clear")
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label=title,
                    show_label=False,  # the floating label would cover the top message
                    height=560,
                    elem_id="g4t-chat",
                    buttons=["copy"],
                    feedback_options=None,
                    group_consecutive_messages=False,
                    placeholder="Upload an image and tell me what to do with it.",
                )
                text = gr.Textbox(
                    show_label=False,
                    placeholder="Type a message and press Enter (an image in the box on the left is sent with it)",
                    elem_id="g4t-text",
                    autofocus=True,
                )
        io = dict(fn=on_submit, inputs=[state, text, image], outputs=[state, chatbot, text, image])
        # Enter (the published demo crashed here) and the button run the same handler; the API
        # (gradio_client) exposes it once, as /submit(text, image), and Clear as /clear().
        text.submit(**io, api_name="submit")
        submit.click(**io, api_visibility="undocumented")
        clear_io = dict(fn=on_clear, inputs=[state], outputs=[state, chatbot, text, image])
        clear.click(**clear_io, api_name="clear")
        chatbot.clear(**clear_io, api_visibility="undocumented")  # the chat's own trash icon
    return demo


def launch_demo(
    demo,
    bot: ChatBot,
    server_name: str = "127.0.0.1",
    server_port: int | None = None,
    share: bool = False,
    concurrency_limit: int = 1,
    prevent_thread_lock: bool = False,
):
    """Queue (concurrent users wait their turn) and serve ``demo``; the session folders are served.

    Returns:
        what ``gr.Blocks.launch`` returns (``(app, local_url, share_url)``).
    """
    bot.image_root.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=concurrency_limit)
    return demo.launch(
        server_name=server_name,
        server_port=server_port,
        share=share,
        allowed_paths=[str(bot.image_root)],
        prevent_thread_lock=prevent_thread_lock,
        ssr_mode=False,
        footer_links=[],
    )


def main(cfg) -> None:
    """Load the model and tools of ``cfg`` (a ``DemoConfig``) and serve the demo until interrupted.

    Exits with status 2 and a message on stderr when the model cannot be loaded.
    """
    from g4t.demo_config import build_agent
    from g4t.llm.base import ModelLoadError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent = build_agent(cfg)
    except (ModelLoadError, ImportError, ValueError) as e:
        print(f"gpt4tools.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    bot = ChatBot(agent, cfg.image_dir, keep_last_n=cfg.keep_last_n, keep_files=cfg.keep_session_files)
    logger.info("Tools: %s", ", ".join(agent.toolbox.tools) or "none")
    launch_demo(
        build_demo(bot),
        bot,
        server_name=cfg.server_name,
        server_port=cfg.server_port,
        share=cfg.share,
        concurrency_limit=cfg.concurrency_limit,
    )
