"""The loaded tools as a Model Context Protocol server (``gpt4tools.py --mcp``), on the official SDK.

Built on the SDK's low-level ``mcp.server.lowlevel.Server``: it keeps every tool's exact published
name (spaces included) and description, takes input schemas derived from the registry, and turns
each failure into a tool error (``isError``). No LLM is loaded; the client's model is the agent.

* **Inputs.** Every declared input is a string. An ``image`` input is a base64-encoded PNG or JPEG,
  a ``data:image/png;base64,...`` URL, or the name of an image already in the session's workspace
  (``image/1a2b3c4d.png``, as named by an earlier result). Uploaded images are decoded, checked and
  saved in the workspace first; the tool then runs on workspace names through
  ``Toolbox.run_args``, so every path and error rule of the web demo holds here too.
* **Results.** The observation text; an image result also comes back as image content (PNG) and
  stays in the workspace under the name the text gives, for the next call.
* **Workspaces.** One folder per MCP session under ``--image_dir``: per process over stdio, per
  ``mcp-session-id`` over streamable HTTP (deleted when the client ends the session or the SDK
  expires it), one per call for the sessionless 2026-07-28 HTTP protocol; all of them at shutdown
  (end of stdin, SIGINT, SIGTERM). ``--keep_session_files`` keeps the folders.
* **Execution.** Tool weights load lazily on first use; tools run one at a time in a worker thread,
  off the event loop. Logs go to stderr (stdout is the stdio protocol channel).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g4t.tools.errors import ImageError, PathError
from g4t.tools.images import open_image
from g4t.tools.registry import Observation, Toolbox, ToolSpec
from g4t.tools.workspace import Workspace

__all__ = [
    "MAX_IMAGE_BYTES",
    "ArgumentError",
    "WorkspacePool",
    "build_server",
    "decode_image_argument",
    "input_schema",
    "main",
    "result_content",
]

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 32 * 1024 * 1024
"""Largest decoded image argument accepted (the HTTP transport also caps request bodies, at 4 MiB)."""
SESSION_IDLE_TIMEOUT = 30 * 60  # seconds without a request before an HTTP session (and its folder) ends
_SWEEP_EVERY = 60  # seconds between checks for idle HTTP session folders
_SESSION_HEADER = "mcp-session-id"
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?)(?P<b64>;base64)?,(?P<data>.*)", re.S)
_IMAGE_HINT = (
    "An image argument is a base64-encoded PNG or JPEG, a data:image/png;base64,... URL, or the name of an "
    "image in this session's workspace (like image/1a2b3c4d.png, as named by an earlier result)."
)
_TEXT_HINTS = {  # what each declared text input holds (the published descriptions say it in prose)
    "text": "The text argument the tool description asks for (an object name, a prompt, a condition...).",
    "box": "The region to crop as [x1, y1, x2, y2]: top-left and bottom-right corners, in pixels.",
    "question": "The question about the image.",
    "instruction": "The edit instruction.",
    "replacement": "What to put in place of the object.",
}


class ArgumentError(ValueError):
    """A tool argument the server cannot use; the message is the tool error the client sees."""


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    """The JSON schema of ``spec``'s arguments: one required string per declared input."""
    properties = {
        name: {"type": "string", "description": _IMAGE_HINT if name == "image" else _TEXT_HINTS.get(name, name)}
        for name in spec.inputs
    }
    return {"type": "object", "properties": properties, "required": list(spec.inputs), "additionalProperties": False}


def _shown(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _image_bytes(text: str) -> bytes | None:
    """The bytes of a ``data:`` URL or base64 argument, or None when ``text`` reads as a name."""
    if text.startswith("data:"):
        m = _DATA_URL.fullmatch(text)
        if not m or not m["b64"]:
            raise ArgumentError(f"the data: URL {_shown(text)} is not a base64 data URL (data:image/png;base64,...)")
        if not (m["mime"] or "").startswith("image/"):
            raise ArgumentError(f"the data: URL holds {m['mime'] or 'no media type'}; send an image/png or image/jpeg")
        payload = "".join(m["data"].split())
    else:
        payload = "".join(text.split())
        # a workspace name has a dot (image/1a2b3c4d.png); a base64 image is long and has none
        if len(payload) < 32 or "." in payload:
            return None
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ArgumentError(f"the image is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    if not _BASE64.fullmatch(payload):
        raise ArgumentError(
            f"the image argument {_shown(text)} is not valid base64 (characters outside A-Z a-z 0-9 + / =)"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ArgumentError(f"the image argument {_shown(text)} is not valid base64 ({e})") from None


def decode_image_argument(text: str, workspace: Workspace) -> str:
    """The workspace name of an image argument; an uploaded image is saved (as an RGB PNG) first.

    Raises:
        ArgumentError: bad base64 or ``data:`` URL, an upload that is not a usable image (too many
            pixels, damaged, not an image), or a name that is not an image of the workspace.
    """
    try:
        data = _image_bytes(text.strip())
    except ArgumentError as e:  # unless it names a file after all (a name without a dot)
        with contextlib.suppress(PathError):
            return workspace.relative(workspace.resolve(text))
        raise ArgumentError(f"{e}. {_IMAGE_HINT}") from None
    try:
        if data is None:  # a workspace name: checked (and confined) by Workspace.resolve
            return workspace.relative(workspace.resolve(text))
        image = open_image(data, max_pixels=workspace.max_pixels, name="uploaded image")
        return workspace.save_image(image)
    except ImageError as e:
        raise ArgumentError(workspace.redact(str(e))) from None
    except PathError as e:
        raise ArgumentError(f"{workspace.redact(str(e))}. {_IMAGE_HINT}") from None
    except (OSError, ValueError) as e:  # saving failed (a full disk)
        raise ArgumentError(f"the uploaded image could not be saved ({e.__class__.__name__})") from None


def result_content(observation: Observation, workspace: Workspace, kept: bool = True) -> tuple[list[Any], bool]:
    """``(content, is_error)`` of a tool result: the observation text, then each image as PNG content.

    Args:
        observation: what ``Toolbox.run_args`` returned.
        workspace: where the call ran.
        kept: the workspace outlives the call (a session's); False for a sessionless call.
    """
    from mcp_types import ImageContent, TextContent

    text = observation.text
    if observation.images and kept:
        names = ", ".join(workspace.relative(p) for p in observation.images)
        text = f"{text}\n(result image saved in this session's workspace as {names}: pass the name to the next tool)"
    elif observation.images:
        text = f"{text}\n(this call has no MCP session, so nothing is kept: send the image itself to the next tool)"
    content: list[Any] = [TextContent(type="text", text=text)]
    for path in observation.images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        content.append(ImageContent(type="image", data=data, mime_type="image/png"))
    return content, observation.error


@dataclass
class _Entry:
    workspace: Workspace
    last_used: float


class WorkspacePool:
    """The session workspaces of one server: ``<root>/<random hex>/image/``, one per session key.

    Args:
        root: the folder that holds the session folders (``--image_dir``).
        keep_files: leave the folders on disk when their session ends (``--keep_session_files``).
    """

    def __init__(self, root: str | Path, keep_files: bool = False) -> None:
        self.root = Path(root).resolve()
        self.keep_files = keep_files
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str) -> Workspace:
        """The workspace of session ``key``, created on first use."""
        entry = self._entries.get(key)
        if entry is None:
            workspace = Workspace(self.root / uuid.uuid4().hex)
            entry = self._entries[key] = _Entry(workspace, time.monotonic())
            logger.info("new session workspace %s", workspace.root.name)
        entry.last_used = time.monotonic()
        return entry.workspace

    def touch(self, key: str) -> None:
        """Note activity of session ``key`` (no folder is created)."""
        if key in self._entries:
            self._entries[key].last_used = time.monotonic()

    def drop(self, key: str) -> None:
        """Session ``key`` ended: forget its workspace and delete its folder (unless ``keep_files``)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._delete(entry.workspace)

    def sweep(self, max_idle: float) -> None:
        """Drop every session idle for more than ``max_idle`` seconds."""
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if now - e.last_used > max_idle]:
            self.drop(key)

    def close(self) -> None:
        """Drop every session (the server stops)."""
        for key in list(self._entries):
            self.drop(key)

    @contextlib.contextmanager
    def one_off(self) -> Iterator[Workspace]:
        """A workspace for one call without a session, deleted (unless ``keep_files``) afterwards."""
        workspace = Workspace(self.root / uuid.uuid4().hex)
        try:
            yield workspace
        finally:
            self._delete(workspace)

    def _delete(self, workspace: Workspace) -> None:
        if not self.keep_files and workspace.root.parent == self.root:
            shutil.rmtree(workspace.root, ignore_errors=True)


def _session_key(ctx, http: bool) -> str | None:
    """``stdio`` for the stdio process, the ``mcp-session-id`` of an HTTP session, None without one."""
    if not http:
        return "stdio"
    request = getattr(ctx, "request", None)
    return (request.headers.get(_SESSION_HEADER) if request is not None else None) or None


def build_server(toolbox: Toolbox, pool: WorkspacePool, http: bool = False):
    """The MCP ``Server`` that lists ``toolbox``'s tools and runs them in ``pool``'s workspaces.

    Args:
        toolbox: the loaded tools.
        pool: where session workspaces live.
        http: streamable HTTP (a workspace per ``mcp-session-id``); else stdio (one for the process).
    """
    import anyio
    import jsonschema
    import mcp_types as types
    from mcp.server.lowlevel import Server

    schemas = {name: input_schema(spec) for name, spec in toolbox.tools.items()}
    limiter = anyio.CapacityLimiter(1)  # one tool call at a time: model pipelines are not thread-safe

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=name, description=spec.description, input_schema=schemas[name])
                for name, spec in toolbox.tools.items()
            ]
        )

    def run(spec: ToolSpec, arguments: dict[str, str], workspace: Workspace, kept: bool) -> types.CallToolResult:
        try:
            args = [
                decode_image_argument(arguments[name], workspace) if name == "image" else arguments[name].strip()
                for name in spec.inputs
            ]
        except ArgumentError as e:
            return _error(f"Error: {spec.name}: {e}")
        observation = toolbox.run_args(spec.name, args, workspace)
        content, is_error = result_content(observation, workspace, kept)
        return types.CallToolResult(content=content, is_error=is_error)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = toolbox.tools.get(params.name)
        if spec is None:
            return _error(f"{params.name} is not a valid tool; the tools are: {', '.join(toolbox.tools)}.")
        arguments = params.arguments or {}
        try:
            jsonschema.validate(arguments, schemas[spec.name])
        except jsonschema.ValidationError as e:
            reason = e.message if len(e.message) <= 200 else e.message[:200] + "..."
            return _error(f"Error: {spec.name}: bad arguments ({reason}); expected strings: {', '.join(spec.inputs)}.")
        key = _session_key(ctx, http)
        try:
            if key is None:  # the sessionless protocol: this call's files live as long as the call
                with pool.one_off() as workspace:
                    return await anyio.to_thread.run_sync(run, spec, arguments, workspace, False, limiter=limiter)
            return await anyio.to_thread.run_sync(run, spec, arguments, pool.get(key), True, limiter=limiter)
        except Exception as e:  # last line of defence: a tool error, never a protocol error or a server path
            logger.exception("tool %s failed", spec.name)
            return _error(f"Error: {spec.name} failed ({e.__class__.__name__})")

    def _error(text: str) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)

    return Server(
        "gpt4tools",
        version=_version(),
        instructions="GPT4Tools visual tools. " + _IMAGE_HINT,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpt4tools")
    except PackageNotFoundError:
        return ""


class _SessionEnd:
    """ASGI wrapper of the streamable-HTTP app: notes each session's activity, drops its workspace once
    the client ends the session (``DELETE``), and every workspace when the server shuts down."""

    def __init__(self, app, pool: WorkspacePool) -> None:
        self.app, self.pool = app, pool

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":

            async def on_shutdown(message) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    self.pool.close()
                await send(message)

            return await self.app(scope, receive, on_shutdown)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        key = dict(scope["headers"]).get(_SESSION_HEADER.encode(), b"").decode("latin-1")
        if not key:
            return await self.app(scope, receive, send)
        self.pool.touch(key)
        if scope["method"] != "DELETE":
            return await self.app(scope, receive, send)

        async def on_end(message) -> None:  # the SDK accepted the DELETE: the folder goes before the answer
            if message["type"] == "http.response.start" and message["status"] < 400:
                self.pool.drop(key)
            await send(message)

        await self.app(scope, receive, on_end)


async def serve_stdio(toolbox: Toolbox, pool: WorkspacePool) -> None:
    """Serve over stdin/stdout until the client closes stdin.

    SIGINT / SIGTERM (a client that did not wait) delete the session folder and end the process at
    once: the SDK reads stdin in a thread that no cancellation can interrupt, and a tool call under
    way cannot be interrupted either.
    """
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(toolbox, pool)

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logger.info("%s: deleting the session folder and stopping", signal.Signals(signum).name)
                pool.close()
                logging.shutdown()
                os._exit(128 + signum)  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        tg.cancel_scope.cancel()


async def serve_http(toolbox: Toolbox, pool: WorkspacePool, host: str, port: int, token: str | None = None) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until interrupted; with ``token``, every request
    must carry ``Authorization: Bearer <token>`` (401 before anything runs otherwise)."""
    import anyio
    import uvicorn

    from g4t.access import BearerAuth

    server = build_server(toolbox, pool, http=True)
    app = _SessionEnd(server.streamable_http_app(host=host, session_idle_timeout=SESSION_IDLE_TIMEOUT), pool)
    web = uvicorn.Server(
        uvicorn.Config(BearerAuth(app, token) if token else app, host=host, port=port, log_level="info")
    )

    async def sweep() -> None:  # the SDK ends idle sessions; their folders follow
        while True:
            await anyio.sleep(_SWEEP_EVERY)
            pool.sweep(SESSION_IDLE_TIMEOUT + _SWEEP_EVERY)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sweep)
        await web.serve()
        tg.cancel_scope.cancel()


def main(cfg) -> None:
    """Serve the tools of ``cfg`` (a ``DemoConfig`` with ``mcp`` set) until the client or a signal ends it.

    Exits with status 2 and a one-line message on stderr when the tools or the folder cannot be set up.
    """
    import anyio

    from g4t.demo_config import build_toolbox

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from g4t.access import exposure_warning, read_token

    try:
        token = read_token(cfg.mcp_token_file) if cfg.mcp_transport == "streamable-http" else None
        toolbox = build_toolbox(cfg)  # as in the web demo
        pool = WorkspacePool(cfg.image_dir, keep_files=cfg.keep_session_files)
        pool.root.mkdir(parents=True, exist_ok=True)
    except (ValueError, ImportError, OSError) as e:
        print(f"gpt4tools.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    logger.info("MCP tools (%s): %s", cfg.mcp_transport, ", ".join(toolbox.tools) or "none")
    try:
        if cfg.mcp_transport == "stdio":
            anyio.run(serve_stdio, toolbox, pool)
        else:  # uvicorn handles SIGINT / SIGTERM; the folders go at its shutdown (see _SessionEnd)
            logger.info(
                "serving MCP at http://%s:%d/mcp%s", cfg.mcp_host, cfg.mcp_port, " (bearer token)" * bool(token)
            )
            warning = exposure_warning(
                cfg.mcp_host, False, bool(token), "The MCP server", "G4T_MCP_TOKEN or --mcp_token_file FILE"
            )
            if warning:
                logger.warning(warning)
            anyio.run(serve_http, toolbox, pool, cfg.mcp_host, cfg.mcp_port, token)
    finally:
        pool.close()
