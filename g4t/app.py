"""The Gradio demo: a chat in which the LLM uses visual tools on the user's images.

Three layers, so that each can be tested on its own:

* ``ChatBot`` (``g4t.chat``, no gradio): sessions, uploads, turns streamed with a time limit, Stop,
  Clear; plain data in, plain data out.
* ``build_demo(bot) -> gr.Blocks`` -- the page: chat with inline images, an image box, a text box
  (Enter and the Submit button run the same handler), Stop, Clear, per-session ``gr.State``. The
  handlers are generators run in Gradio's worker threads: the chat updates as the model writes (the
  current step's reasoning in a pending "Used tool" thought, then the answer), and Stop cancels the
  turn. Images are shown by URL, copied once into Gradio's upload folder, so a turn sends only text
  and its cost does not grow with the number of images in the chat.
* ``launch_demo`` / ``main`` -- queue for concurrent users and serve; ``main`` also loads the model
  and exits with status 2 and a clear message (no traceback) when it cannot be loaded.

gradio is imported inside the functions that need it only.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from g4t.chat import ChatBot, Message, Session

__all__ = ["ChatBot", "Session", "build_demo", "launch_demo", "main"]

logger = logging.getLogger(__name__)

_TITLE = "GPT4Tools"
_INTRO = (
    "Upload an image, then ask about it or ask for an edit (for example *detect the edges of this image*). "
    "The assistant decides which visual tool to use; expand **Used tool** to see its reasoning."
)


class ImageShelf:
    """The images the sessions show, by URL: each is copied once into ``root/<session public id>/``
    (a folder Gradio serves), so the chat carries a short markdown link instead of a file that
    Gradio would hash and the API client download again on every turn.

    Args:
        root: a folder served by Gradio (its upload folder); the session folders are never exposed.
        url_prefix: what comes before the file's path in a URL (relative to the page).
    """

    def __init__(self, root: str | Path, url_prefix: str = "gradio_api/file=") -> None:
        self.root = Path(root).resolve()
        self.url_prefix = url_prefix
        self._urls: dict[str, dict[str, str]] = {}  # session public id -> {image path: URL}
        self._lock = threading.Lock()

    def display(self, session: Session, messages: list[Message]) -> list[Message]:
        """``messages`` with every image message turned into a markdown image link."""
        return [self._shown(session, m) if isinstance(m.get("content"), dict) else m for m in messages]

    def _shown(self, session: Session, message: Message) -> Message:
        content = message["content"]
        path = content.get("path")
        if not path:
            return message
        with self._lock:
            urls = self._urls.setdefault(session.public_id, {})
            url = urls.get(path)
            if url is None:
                folder = self.root / session.public_id
                folder.mkdir(parents=True, exist_ok=True)
                copy = folder / Path(path).name
                try:
                    shutil.copyfile(path, copy)
                except OSError as e:
                    logger.warning("cannot show image %s: %s", Path(path).name, e.strerror or e)
                    return {**message, "content": f"(image {content.get('alt_text') or Path(path).name} unavailable)"}
                url = urls[path] = self.url_prefix + quote(str(copy))
        alt = str(content.get("alt_text") or Path(path).name).replace("]", ")").replace("[", "(")
        return {**message, "content": f"![{alt}]({url})"}

    def forget(self, session: Session | None) -> None:
        """Delete the copies of an ended session."""
        if not isinstance(session, Session):
            return
        with self._lock:
            self._urls.pop(session.public_id, None)
        folder = (self.root / session.public_id).resolve()
        if folder.parent == self.root and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _image_box(gr, **kwargs):
    """An image input that hands the upload's file path to the app unopened.

    ``gr.Image`` opens every upload with PIL before the handler runs, so an empty, damaged or non-image
    file failed inside Gradio with a generic "Error" toast; the app decodes uploads itself
    (``Workspace.save_upload``) and shows its own message in the chat. (The instance's ``preprocess`` is
    replaced rather than subclassing ``gr.Image``: Gradio writes a ``.pyi`` stub next to the module of
    every component subclass, i.e. into the installed package.)
    """
    box = gr.Image(**kwargs)

    def preprocess(payload):
        if payload is None:
            return None
        if payload.path is None and (payload.url or "").startswith("data:"):  # a pasted image, inline
            return base64.b64decode(payload.url.partition(",")[2])
        return payload.path

    box.preprocess = preprocess
    return box


def build_demo(bot: ChatBot, title: str = _TITLE, shelf: ImageShelf | None = None):
    """The page for ``bot`` as a ``gr.Blocks`` (not launched).

    Args:
        bot: the chat logic. Its ``upload_root`` is set to Gradio's upload folder if unset (a failed
            upload is deleted there).
        title: page title and heading.
        shelf: where shown images are copied (default: a ``g4t`` folder in Gradio's upload folder).
    """
    import gradio as gr
    from gradio.utils import get_upload_folder

    uploads = Path(get_upload_folder()).resolve()
    if bot.upload_root is None:
        bot.upload_root = uploads
    shelf = shelf or ImageShelf(uploads / "g4t")

    def on_submit(session, text, image):
        # the text and image boxes are emptied by the first update (later ones send no change for them)
        for session, messages in bot.submit_stream(session, text, image):
            yield session, shelf.display(session, messages), "", None

    def on_stop(session):
        session, messages = bot.stop(session)
        return session, shelf.display(session, messages)

    def on_clear(session):
        session, messages = bot.clear(session)
        return session, messages, "", None

    def on_end(session):  # Gradio calls it when it drops a session (an hour after its tab closed)
        bot.end_session(session)
        shelf.forget(session)

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\n{_INTRO}")
        # a Session, created by the first handler call of each browser session
        # (a plain function, not a bound method: Gradio deep-copies the page config on every page
        # load, and a bound method would drag the whole bot, model weights included, into that copy)
        state = gr.State(None, delete_callback=lambda session: on_end(session))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240):
                image = _image_box(
                    gr,
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    label="Image",
                    height=260,
                    elem_id="g4t-image",
                )
                submit = gr.Button("Submit", variant="primary", elem_id="g4t-submit")
                with gr.Row():
                    stop = gr.Button("Stop", variant="stop", elem_id="g4t-stop")
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
                    latex_delimiters=[],  # no LaTeX scan of every message on each update
                )
                text = gr.Textbox(
                    show_label=False,
                    placeholder="Type a message and press Enter (an image in the box on the left is sent with it)",
                    elem_id="g4t-text",
                    autofocus=True,
                )
        # Enter (the published demo crashed here) and the button run the same handler, in one
        # concurrency group (``--concurrency_limit`` turns at once); the API (gradio_client) exposes it
        # once, as /submit(text, image), Stop as /stop() and Clear as /clear().
        io = dict(
            fn=on_submit, inputs=[state, text, image], outputs=[state, chatbot, text, image], concurrency_id="turn"
        )
        turns = [
            text.submit(**io, api_name="submit"),
            submit.click(**io, api_visibility="undocumented"),
        ]
        stop.click(on_stop, inputs=[state], outputs=[state, chatbot], cancels=turns, api_name="stop")
        clear_io = dict(fn=on_clear, inputs=[state], outputs=[state, chatbot, text, image], cancels=turns)
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
    auth: list[tuple[str, str]] | None = None,
    max_queue: int | None = None,
):
    """Queue (concurrent users wait their turn) and serve ``demo``; with ``auth`` (``(user, password)`` pairs)
    the page, its HTTP API and its files need a sign-in (Gradio's authentication). Served beyond this machine
    without it, a warning names the risk and the flag. ``max_queue`` turns may wait; one more is refused at once.

    Returns:
        what ``gr.Blocks.launch`` returns (``(app, local_url, share_url)``).
    """
    from g4t.access import exposure_warning

    warning = exposure_warning(server_name, share, bool(auth), "The demo", "--auth FILE or G4T_AUTH")
    if warning:
        logger.warning(warning)
    bot.image_root.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo.launch(
        server_name=server_name,
        server_port=server_port,
        share=share,
        auth=auth,
        prevent_thread_lock=prevent_thread_lock,
        ssr_mode=False,
        footer_links=[],
    )


def main(cfg) -> None:
    """Load the model and tools of ``cfg`` (a ``DemoConfig``) and serve the demo until interrupted.

    Exits with status 2 and a message on stderr when the model cannot be loaded.
    """
    from g4t.access import read_credentials
    from g4t.demo_config import build_agent
    from g4t.llm.base import ModelLoadError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        credentials = read_credentials(cfg.auth)
        agent = build_agent(cfg)
    except (ModelLoadError, ImportError, ValueError) as e:
        print(f"gpt4tools.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    bot = ChatBot(
        agent,
        cfg.image_dir,
        keep_last_n=cfg.keep_last_n,
        keep_files=cfg.keep_session_files,
        turn_timeout=cfg.turn_timeout,
    )
    logger.info("Tools: %s", ", ".join(agent.toolbox.tools) or "none")
    launch_demo(
        build_demo(bot),
        bot,
        server_name=cfg.server_name,
        server_port=cfg.server_port,
        share=cfg.share,
        concurrency_limit=cfg.concurrency_limit,
        auth=credentials,
        max_queue=cfg.max_queue,
    )
