"""Who may use the servers: sign-in for the web demo, a bearer token for the MCP server over HTTP.

* The demo's users come from ``--auth FILE`` (one ``user:password`` per line; blank lines and ``#``
  comments skipped) or the environment variable ``G4T_AUTH`` (``user:password`` pairs, comma-separated),
  never from the command line, where ``ps`` shows it. Gradio's own authentication then guards the page,
  its HTTP API and its file routes.
* The streamable-HTTP MCP server takes its token from ``G4T_MCP_TOKEN`` or ``--mcp_token_file FILE``;
  ``BearerAuth`` checks ``Authorization: Bearer <token>`` on every request before anything runs and
  answers 401 otherwise. stdio needs none (the client starts the process).
* Served beyond this machine (a non-loopback address, or a public ``--share`` link) without them, the
  servers start with a warning that names the risk and the flag (``exposure_warning``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from pathlib import Path

__all__ = ["AUTH_ENV", "TOKEN_ENV", "BearerAuth", "exposure_warning", "read_credentials", "read_token"]

AUTH_ENV = "G4T_AUTH"
TOKEN_ENV = "G4T_MCP_TOKEN"


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password.strip():
        raise ValueError(f"{where}: expected user:password, got {'an empty entry' if not text else repr(user + sep)}")
    return user.strip(), password.strip()


def read_credentials(path: str | None, env: dict | None = None) -> list[tuple[str, str]] | None:
    """The demo's ``(user, password)`` pairs from the file ``path``, else from ``$G4T_AUTH``; None when
    neither is given.

    Raises:
        ValueError: an unreadable or empty file, or an entry that is not ``user:password`` (the message
            names the file and line, never the password).
    """
    env = os.environ if env is None else env
    if path:
        try:
            lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--auth {path}: cannot read it ({e.__class__.__name__})") from None
        pairs = [
            _pair(line.strip(), f"--auth {path}, line {n}")
            for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if not pairs:
            raise ValueError(f"--auth {path}: no user:password line")
        return pairs
    if env.get(AUTH_ENV):
        return [_pair(item.strip(), f"${AUTH_ENV}, entry {n}") for n, item in enumerate(env[AUTH_ENV].split(","), 1)]
    return None


def read_token(path: str | None, env: dict | None = None) -> str | None:
    """The MCP server's bearer token from the file ``path`` (its first line), else ``$G4T_MCP_TOKEN``.

    Raises:
        ValueError: the file cannot be read or holds no token.
    """
    env = os.environ if env is None else env
    if path:
        try:
            token = Path(path).expanduser().read_text(encoding="utf-8").strip().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--mcp_token_file {path}: cannot read it ({e.__class__.__name__})") from None
        if not token or not token[0].strip():
            raise ValueError(f"--mcp_token_file {path}: the file holds no token")
        return token[0].strip()
    return env.get(TOKEN_ENV, "").strip() or None


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def exposure_warning(host: str, share: bool, protected: bool, what: str, flag: str) -> str | None:
    """A warning when ``what`` is reachable beyond this machine and nothing guards it (None otherwise)."""
    if protected or (_loopback(host) and not share):
        return None
    where = "a public gradio.live link (--share)" if share else f"{host}, reachable from other machines"
    return (
        f"{what} is served on {where} with no sign-in: anyone who finds the address can use it and every loaded "
        f"tool (GPU generation included). Set {flag}."
    )


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``; any other gets
    401 (with ``WWW-Authenticate: Bearer``) and never reaches ``app``. The comparison takes constant time."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._token):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized: send Authorization: Bearer <token> (G4T_MCP_TOKEN)"}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
