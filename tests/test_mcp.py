"""The tools as an MCP server (``gpt4tools.py --mcp``), driven end to end by the official SDK's client.

The server runs as a real subprocess on CPU tools (Canny edges, crop, Tesseract OCR) over stdio and
over streamable HTTP; the unit tests at the end cover argument decoding and the session folders.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import anyio
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import g4t.tools  # noqa: F401  (registers every tool family)
from g4t.mcp_server import ArgumentError, WorkspacePool, decode_image_argument, input_schema
from g4t.tools.registry import TOOLS
from g4t.tools.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "assets" / "tool_specs.golden.json").read_text(encoding="utf-8"))["tools"]
LOAD = "Image2Canny_cpu,CropImage_cpu,TextDetection_cpu"
NAMES = ["Edge Detection On Image", "Crop Image", "Text Detection On Image"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _square() -> Image.Image:
    """200x100 white picture with a black rectangle (20..79, 50..149): edges on its border only."""
    image = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(image).rectangle((50, 20, 149, 79), fill="black")
    return image


def _bomb_header(width: int = 60000, height: int = 60000) -> bytes:
    """A PNG that claims ``width x height`` pixels (3.6 G) in a few bytes: refused before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _image(result) -> Image.Image:
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png", result
    return Image.open(io.BytesIO(base64.b64decode(images[0].data)))


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def _server_args(image_dir: Path, *extra: str) -> list[str]:
    return ["gpt4tools.py", "--mcp", "--load", LOAD, "--image_dir", str(image_dir), *extra]


_ERROR_CASES = {  # name: (tool, arguments, words the error must hold)
    "unknown tool": ("Blur Image", {"image": "x.png"}, "Blur Image is not a valid tool"),
    "bad base64": ("Edge Detection On Image", {"image": "iVBORw0KGgo" + "A" * 40 + "!"}, "not valid base64"),
    "not an image": ("Edge Detection On Image", {"image": base64.b64encode(b"hello " * 20).decode()}, "format"),
    "hostile path": ("Edge Detection On Image", {"image": "../../etc/passwd"}, "'..' may not appear"),
    "absolute path": ("Edge Detection On Image", {"image": str(ROOT / "README.md")}, "is not allowed"),
    "missing file": ("Crop Image", {"image": "image/1a2b3c4d.png", "box": "[0, 0, 9, 9]"}, "does not exist"),
    "60000x60000": ("Edge Detection On Image", {"image": base64.b64encode(_bomb_header()).decode()}, "pixels"),
    "missing argument": ("Crop Image", {"image": "image/1a2b3c4d.png"}, "'box' is a required property"),
    "wrong type": ("Crop Image", {"image": 5, "box": "[0, 0, 9, 9]"}, "is not of type 'string'"),
    "bad box": ("Crop Image", {"image": base64.b64encode(_png(_square())).decode(), "box": "[1, 2]"}, "x1, y1"),
}


@pytest.fixture(scope="module")
def stdio(tmp_path_factory):
    """One ``gpt4tools.py --mcp`` process over stdio, spawned by the SDK's client: what it answered,
    the session folders seen during the session, and those left after the client closed it."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    image_dir = tmp_path_factory.mktemp("mcp_stdio") / "out"
    params = StdioServerParameters(command=sys.executable, args=_server_args(image_dir), env=ENV, cwd=str(ROOT))
    run = {"image_dir": image_dir, "errors": {}}
    picture = Image.new("RGB", (640, 120), "white")
    font = ImageFont.load_default(size=40)
    ImageDraw.Draw(picture).text((20, 30), "Hello Visual Chat 2024", fill="black", font=font)

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            run["tools"] = (await session.list_tools()).tools
            square = base64.b64encode(_png(_square())).decode()
            run["edges"] = await session.call_tool("Edge Detection On Image", {"image": square})
            run["edges_name"] = name = _text(run["edges"]).split()[0]
            run["folders"] = list(image_dir.iterdir())
            run["saved"] = [(folder / name).is_file() for folder in run["folders"]]
            run["crop"] = await session.call_tool("Crop Image", {"image": name, "box": "[50, 20, 100, 80]"})
            url = "data:image/jpeg;base64," + base64.b64encode(_png(picture, "JPEG")).decode()
            run["ocr"] = await session.call_tool("Text Detection On Image", {"image": url})
            for case, (tool, arguments, _) in _ERROR_CASES.items():
                run["errors"][case] = await session.call_tool(tool, arguments)

    anyio.run(main)
    run["folders_after"] = list(image_dir.iterdir())
    return run


def test_stdio_lists_the_published_tools(stdio):
    tools = stdio["tools"]
    assert [t.name for t in tools] == NAMES
    for t in tools:
        assert t.description == GOLDEN[t.name]["description"]  # the exact published strings
    crop = next(t for t in tools if t.name == "Crop Image").input_schema
    assert crop["required"] == ["image", "box"] and crop["additionalProperties"] is False
    assert {p["type"] for p in crop["properties"].values()} == {"string"}
    assert "base64" in crop["properties"]["image"]["description"]


def test_stdio_edge_detection_returns_the_image_and_names_it_in_the_workspace(stdio):
    result = stdio["edges"]
    assert not result.is_error, _text(result)
    edges = np.asarray(_image(result).convert("L"))
    assert edges.shape == (100, 200)  # the size sent: uploads are not resized
    assert edges[20:80, 48:52].max() == 255 and edges[20:80, 148:152].max() == 255  # left / right sides
    assert edges[:10].max() == 0 and edges[35:65, 70:130].max() == 0  # flat areas: no edges
    name = stdio["edges_name"]
    assert name.startswith("image/") and name.endswith(".png")
    assert stdio["saved"] == [True]  # one session folder, holding the result under that name


def test_stdio_crop_by_workspace_name_and_ocr_by_data_url(stdio):
    assert not stdio["crop"].is_error, _text(stdio["crop"])
    assert _image(stdio["crop"]).size == (50, 60)
    ocr = stdio["ocr"]
    assert not ocr.is_error and _text(ocr) == "Hello Visual Chat 2024"
    assert not [c for c in ocr.content if c.type == "image"]


@pytest.mark.parametrize("case", list(_ERROR_CASES))
def test_stdio_errors_are_tool_errors_without_server_paths(stdio, case):
    result, expected = stdio["errors"][case], _ERROR_CASES[case][2]
    text = _text(result)
    assert result.is_error, text
    assert expected in text, text
    assert str(stdio["image_dir"].parent) not in text and str(ROOT) not in text, text  # no server path
    assert len(text) < 600 and "Traceback" not in text, text


def test_stdio_session_folder_is_deleted_when_the_client_closes(stdio):
    assert stdio["folders"] and stdio["folders_after"] == []


def test_stdio_sigterm_deletes_the_session_folder(tmp_path):
    """A client that stops the server with SIGTERM (instead of closing stdin) leaves no folder behind."""
    image_dir = tmp_path / "out"
    server = subprocess.Popen(
        [sys.executable, *_server_args(image_dir)],
        env=ENV,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def ask(message: dict) -> dict | None:
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline()) if "id" in message else None

    try:
        client = {"name": "test", "version": "0"}
        ask(
            {
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client},
            }
        )
        ask({"method": "notifications/initialized"})
        square = base64.b64encode(_png(_square())).decode()
        reply = ask(
            {
                "id": 2,
                "method": "tools/call",
                "params": {"name": "Edge Detection On Image", "arguments": {"image": square}},
            }
        )
        assert reply["result"]["isError"] is False and len(list(image_dir.iterdir())) == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 128 + signal.SIGTERM
        assert list(image_dir.iterdir()) == []
    finally:
        server.kill()
        server.wait()


def wait_for_port(server: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    """Until ``server`` accepts connections on ``port`` (fails with its log if it exits or takes too long)."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, log.read_text()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_keeps_a_workspace_per_session(tmp_path):
    from mcp import Client, ClientSession
    from mcp.client.streamable_http import streamable_http_client

    image_dir, port = tmp_path / "out", _free_port()
    log = (tmp_path / "server.log").open("w")
    args = _server_args(image_dir, "--mcp_transport", "streamable-http", "--mcp_port", str(port))
    server = subprocess.Popen([sys.executable, *args], env=ENV, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mcp"
    square = "data:image/png;base64," + base64.b64encode(_png(_square())).decode()

    async def main() -> None:
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()  # the handshake protocol: a session with an mcp-session-id
            assert [t.name for t in (await session.list_tools()).tools] == NAMES
            result = await session.call_tool("Edge Detection On Image", {"image": square})
            assert not result.is_error and _image(result).size == (200, 100)
            name = _text(result).split()[0]
            result = await session.call_tool("Crop Image", {"image": name, "box": "[0, 0, 100, 50]"})
            assert not result.is_error and _image(result).size == (100, 50)
            assert len(list(image_dir.iterdir())) == 1
        assert list(image_dir.iterdir()) == []  # the client ended the session (DELETE): folder gone

        async with Client(url) as client:  # the sessionless 2026-07-28 protocol: each call on its own
            result = await client.call_tool("Edge Detection On Image", {"image": square})
            assert not result.is_error and _image(result).size == (200, 100)
            assert "nothing is kept" in _text(result)
            result = await client.call_tool("Crop Image", {"image": name, "box": "[0, 0, 100, 50]"})
            assert result.is_error and "does not exist" in _text(result)  # another session's file
        assert list(image_dir.iterdir()) == []

    try:
        wait_for_port(server, port, tmp_path / "server.log")
        anyio.run(main)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


# ---- units: no subprocess ---------------------------------------------------------------------------
def test_input_schema_follows_the_registry():
    for spec in TOOLS.values():
        schema = input_schema(spec)
        assert list(schema["properties"]) == list(spec.inputs) == schema["required"]
        assert all(p["type"] == "string" and p["description"] for p in schema["properties"].values())


def test_image_arguments_decode_into_the_workspace(tmp_path):
    ws = Workspace(tmp_path)
    rgba = Image.new("RGBA", (30, 20), (255, 0, 0, 128))
    name = decode_image_argument(base64.b64encode(_png(rgba)).decode(), ws)
    saved = Image.open(ws.resolve(name))
    assert saved.mode == "RGB" and saved.size == (30, 20)  # no resizing: box coordinates stay the client's
    wrapped = "\n".join(base64.b64encode(_png(_square(), "JPEG")).decode()[i : i + 76] for i in range(0, 9999, 76))
    assert Image.open(ws.resolve(decode_image_argument(f"data:image/jpeg;base64,{wrapped}", ws))).size == (200, 100)
    assert decode_image_argument(f" {name} ", ws) == name
    before = sorted((tmp_path / "image").iterdir())
    for bad, message in [
        ("data:text/plain;base64,aGVsbG8=", "text/plain"),
        ("data:image/png,rawbytes", "not a base64 data URL"),
        ("A" * 41, "not valid base64"),
        (base64.b64encode(_bomb_header(20000, 20000)).decode(), "pixels"),
        (base64.b64encode(_png(_square())[:200]).decode(), "uploaded image"),  # truncated
        ("~/.ssh/id_rsa", "is not allowed"),
    ]:
        with pytest.raises(ArgumentError, match=message):
            decode_image_argument(bad, ws)
    assert sorted((tmp_path / "image").iterdir()) == before  # a refused upload leaves no file


def test_workspace_pool_deletes_ended_and_idle_sessions(tmp_path):
    pool = WorkspacePool(tmp_path)
    a, b = pool.get("a"), pool.get("b")
    assert pool.get("a") is a and a.root.parent == b.root.parent == tmp_path and a.root != b.root
    pool.drop("a")
    assert not a.root.exists() and b.root.exists()
    pool.sweep(max_idle=3600)
    assert b.root.exists()
    pool.sweep(max_idle=-1)
    assert not b.root.exists()
    with pool.one_off() as once:
        assert once.root.is_dir()
    assert not once.root.exists()
    kept = WorkspacePool(tmp_path, keep_files=True)
    c = kept.get("c")
    kept.close()
    assert c.root.is_dir()
