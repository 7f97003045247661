"""Sign-in for the demo (--auth / G4T_AUTH) and a bearer token for the MCP server (G4T_MCP_TOKEN), tested
with real HTTP clients: nothing runs for a request that does not carry them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import anyio
import pytest
from test_app_browser import _free_port
from test_mcp import ENV, ROOT, _server_args, wait_for_port

from g4t.access import BearerAuth, exposure_warning, read_credentials, read_token
from g4t.agent import Agent
from g4t.app import ChatBot, build_demo, launch_demo
from g4t.llm import ScriptedBackend
from g4t.tools import Toolbox


def test_credentials_come_from_a_file_or_the_environment_and_bad_lines_name_their_place(tmp_path):
    f = tmp_path / "users"
    f.write_text("# who may sign in\nann:s3cret:with:colons\n\n bob : pw \n")
    assert read_credentials(str(f), env={}) == [("ann", "s3cret:with:colons"), ("bob", "pw")]
    assert read_credentials(None, env={"G4T_AUTH": "ann:one, bob:two"}) == [("ann", "one"), ("bob", "two")]
    assert read_credentials(None, env={}) is None
    f.write_text("ann:ok\njust-a-name\n")
    with pytest.raises(ValueError, match="line 2: expected user:password") as e:
        read_credentials(str(f), env={})
    assert "ok" not in str(e.value)  # never a password in a message
    with pytest.raises(ValueError, match="entry 2"):
        read_credentials(None, env={"G4T_AUTH": "ann:pw,:nouser"})
    with pytest.raises(ValueError, match="cannot read it"):
        read_credentials(str(tmp_path / "missing"), env={})
    (tmp_path / "empty").write_text("# nobody\n")
    with pytest.raises(ValueError, match="no user:password line"):
        read_credentials(str(tmp_path / "empty"), env={})
    (tmp_path / "token").write_text("abc123\n")
    assert read_token(str(tmp_path / "token"), env={}) == "abc123"
    assert read_token(None, env={"G4T_MCP_TOKEN": " xyz "}) == "xyz" and read_token(None, env={}) is None


def test_serving_beyond_this_machine_without_sign_in_warns_with_the_flag():
    assert exposure_warning("127.0.0.1", False, False, "The demo", "--auth") is None
    assert exposure_warning("localhost", False, False, "The demo", "--auth") is None
    assert exposure_warning("0.0.0.0", False, True, "The demo", "--auth") is None
    warning = exposure_warning("0.0.0.0", False, False, "The demo", "--auth FILE")
    assert "0.0.0.0" in warning and "--auth FILE" in warning and "anyone" in warning
    assert "gradio.live" in exposure_warning("127.0.0.1", True, False, "The demo", "--auth")


def _get(url, data=None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_demo_with_auth_refuses_every_route_until_signed_in(tmp_path, caplog):
    bot = ChatBot(
        Agent(ScriptedBackend(["Thought: Do I need to use a tool? No\nAI: hi there"]), Toolbox("Image2Canny_cpu")),
        tmp_path,
    )
    demo, port = build_demo(bot), _free_port()
    url = f"http://127.0.0.1:{port}/"
    try:
        launch_demo(demo, bot, server_port=port, prevent_thread_lock=True, auth=[("ann", "pw1")])
        secret = tmp_path / "secret.txt"
        secret.write_text("private")
        for route in ("config", "gradio_api/info", f"gradio_api/file={secret}"):
            status, body = _get(url + route)
            assert status == 401, (route, status, body[:200])
        for route in ("gradio_api/queue/join", "gradio_api/call/submit", "gradio_api/run/submit"):
            status, _ = _get(url + route, json.dumps({"data": ["hello", None], "fn_index": 0}).encode())
            assert status in (401, 403), (route, status)
        from gradio_client import Client

        with pytest.raises(Exception, match="credentials|login"):
            Client(url, verbose=False)
        with pytest.raises(Exception, match="login"):
            Client(url, auth=("ann", "wrong"), verbose=False)
        messages, _, _ = Client(url, auth=("ann", "pw1"), verbose=False).predict("hello", None, api_name="/submit")
        assert messages[-1]["content"][0]["text"] == "hi there"
    finally:
        demo.close()


def test_the_demo_without_auth_on_all_addresses_warns(tmp_path, caplog):
    bot = ChatBot(Agent(ScriptedBackend(["AI: hi"]), Toolbox("Image2Canny_cpu")), tmp_path)
    demo, port = build_demo(bot), _free_port()
    try:
        with caplog.at_level("WARNING", logger="g4t.app"):
            launch_demo(demo, bot, server_name="0.0.0.0", server_port=port, prevent_thread_lock=True)
        assert any("--auth FILE or G4T_AUTH" in r.getMessage() for r in caplog.records)
    finally:
        demo.close()


def test_bearer_auth_answers_401_before_the_app_runs():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guarded = BearerAuth(app, "t0ken")

    async def request(headers):
        sent = []

        async def send(message):
            sent.append(message)

        await guarded({"type": "http", "path": "/mcp", "headers": headers}, None, send)
        return sent[0]["status"]

    assert anyio.run(request, []) == 401
    assert anyio.run(request, [(b"authorization", b"Bearer wrong")]) == 401
    assert anyio.run(request, [(b"authorization", b"Basic t0ken")]) == 401
    assert calls == []
    assert anyio.run(request, [(b"authorization", b"Bearer t0ken")]) == 200 and calls == ["/mcp"]


def test_the_mcp_server_over_http_needs_the_token_from_the_sdk_client(tmp_path):
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    image_dir, port = tmp_path / "out", _free_port()
    log = (tmp_path / "server.log").open("w")
    args = _server_args(image_dir, "--mcp_transport", "streamable-http", "--mcp_port", str(port))
    env = {**ENV, "G4T_MCP_TOKEN": "s3cret-token"}
    server = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mcp"

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10) as raw:  # no token, a wrong one: 401, nothing runs
            for headers in ({}, {"Authorization": "Bearer nope"}):
                r = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
                assert r.status_code == 401
        headers = {"Authorization": "Bearer s3cret-token"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            async with (
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                assert "Edge Detection On Image" in [t.name for t in (await s.list_tools()).tools]
        assert not image_dir.exists() or list(image_dir.iterdir()) == []

    try:
        wait_for_port(server, port, tmp_path / "server.log")
        anyio.run(main)
        assert "(bearer token)" in (tmp_path / "server.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_a_full_queue_refuses_a_turn_at_once_with_a_clear_message(tmp_path):
    import threading

    from gradio_client import Client

    release = threading.Event()

    def slow(prompt: str) -> str:
        release.wait(30)
        return "Thought: Do I need to use a tool? No\nAI: done"

    bot = ChatBot(Agent(ScriptedBackend(slow), Toolbox("Image2Canny_cpu")), tmp_path)
    demo, port = build_demo(bot), _free_port()
    try:
        launch_demo(demo, bot, server_port=port, prevent_thread_lock=True, max_queue=1)
        clients = [Client(f"http://127.0.0.1:{port}/", verbose=False) for _ in range(3)]
        jobs = []
        for client in clients:  # one runs, one waits, the third finds the queue full
            jobs.append(client.submit(f"hello {len(jobs)}", None, api_name="/submit"))
            time.sleep(1.0)
        errors = []
        for job in jobs[2:]:
            try:
                job.result(timeout=20)
            except Exception as e:  # gradio_client raises the server's refusal
                errors.append(str(e))
        release.set()
        assert errors and "Queue is full" in errors[0]
        assert [job.result(timeout=60)[0][-1]["content"][0]["text"] for job in jobs[:2]] == ["done", "done"]
    finally:
        release.set()
        demo.close()
