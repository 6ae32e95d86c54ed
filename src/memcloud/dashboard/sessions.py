"""Dashboard sessions: a signed cookie, its CSRF token, and the data dir's secret key.

The session lives in one cookie, `<base64 JSON>.<base64 HMAC-SHA256>`, signed with a key kept
in `<data-dir>/dashboard.key` (mode 0600), so a restart keeps people signed in and nothing is
stored per session on the server. Every browser gets a session, even before signing in (kind
`anon`), because the CSRF token of every form, the sign-in forms included, is derived from the
session's random nonce: `HMAC(key, "csrf:" + nonce)`. Signing in replaces the nonce, so a
token seen before sign-in is useless after it.

What a session may do is checked again on every request (see `access.py`): the cookie only
says who signed in, never what they may still do. Signing out is remembered server-side
(the control store keeps a hash of the session's nonce until the session would have
expired), so a cookie captured before the sign-out opens nothing afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from memcloud.bootstrap import write_private

__all__ = [
    "COOKIE_NAME",
    "KEY_FILENAME",
    "SESSION_SECONDS",
    "DashboardSession",
    "Signer",
    "load_key",
]

COOKIE_NAME = "memcloud_session"
KEY_FILENAME = "dashboard.key"
KEY_BYTES = 32
# A signed-in session lasts a working day; the cookie expires with it.
SESSION_SECONDS = 8 * 3600
# An anonymous session (only the sign-in form's CSRF nonce) lasts as long.
Kind = Literal["anon", "cache", "admin"]
Via = Literal["", "password", "sso", "admin"]


def load_key(data_dir: Path) -> bytes:
    """The data dir's dashboard key, made (0600) on first use."""
    path = data_dir / KEY_FILENAME
    try:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= KEY_BYTES:
            return key
    except (FileNotFoundError, ValueError):
        pass
    key = secrets.token_bytes(KEY_BYTES)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, key.hex() + "\n")
    return key


@dataclass(frozen=True, slots=True)
class DashboardSession:
    kind: Kind
    nonce: str
    expires: int
    cache_id: int = 0
    credential_id: int = 0  # the signed-in credential (via "password")
    username: str = ""
    via: Via = ""
    sso_version: int = 0  # via "sso": must still match the cache's SSO version
    admin: str = ""  # kind "admin": fingerprint of the admin token it signed in with
    # kind "cache": the generation of the cache signed in to; a cache deleted and another
    # made (even under the same id) has another, and the session no longer opens it.
    generation: str = ""

    @staticmethod
    def anonymous(now: float | None = None) -> DashboardSession:
        now = time.time() if now is None else now
        return DashboardSession("anon", secrets.token_urlsafe(16), int(now) + SESSION_SECONDS)

    @property
    def digest(self) -> bytes:
        """What the control store remembers of a signed-out session (never its nonce)."""
        return hashlib.sha256(b"session\0" + self.nonce.encode()).digest()

    def signed_in(self, **fields: object) -> DashboardSession:
        """A fresh session (new nonce, new expiry) for someone who just proved who they are."""
        fresh = DashboardSession.anonymous()
        return replace(fresh, **fields)  # type: ignore[arg-type]


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, label: str, data: bytes) -> bytes:
        return hmac.new(self._key, label.encode() + b"\0" + data, hashlib.sha256).digest()

    def derive(self, label: str, value: str) -> str:
        """A stable secret for `label`/`value` (e.g. an idempotent provisioning password)."""
        return self._mac(label, value.encode()).hex()

    def dumps(self, session: DashboardSession) -> str:
        body = json.dumps(asdict(session), separators=(",", ":"), sort_keys=True).encode()
        mac = self._mac("session", body)
        return f"{_b64(body)}.{_b64(mac)}"

    def loads(self, cookie: str | None, now: float | None = None) -> DashboardSession | None:
        """The session in a cookie, or None when absent, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 4096:
            return None
        body_text, mac_text = cookie.split(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            session = DashboardSession(**json.loads(body))
        except (ValueError, TypeError):
            return None
        if session.expires < (time.time() if now is None else now):
            return None
        return session

    def csrf_token(self, session: DashboardSession) -> str:
        return self._mac("csrf", session.nonce.encode()).hex()

    def check_csrf(self, session: DashboardSession, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session), token)

    def admin_fingerprint(self, token: str) -> str:
        """Names the admin token a session signed in with, without holding the token."""
        return self._mac("admin", token.encode()).hex()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
