"""The server's TLS context, built once at start from `--tls-cert`, `--tls-key` and
`--tls-client-ca`; a file that cannot be used stops the start with one line naming it.

The data plane's listeners hand the context to the event loop (uvloop does the TLS), so the
per-command path never sees it; the HTTP API loads the same certificate and key in uvicorn.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final, NoReturn

from memcloud.config import Settings

__all__ = ["TLSSetupError", "server_context"]

_CERT_MARK: Final = b"-----BEGIN CERTIFICATE-----"
_KEY_MARK: Final = b"PRIVATE KEY-----"


class TLSSetupError(OSError):
    """A certificate, key or CA file that cannot be used (the message names it and why)."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSSetupError(f"{what} {path}: {exc.strerror or exc}") from None


def _encrypted_key() -> NoReturn:
    # Without this callback OpenSSL would prompt on the terminal for a pass phrase.
    raise TLSSetupError("is encrypted with a pass phrase; give an unencrypted key")


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc).lower().replace("_", " ")


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the data-plane listeners, or None when TLS is not configured."""
    if settings.tls_cert is None:
        return None
    cert = settings.tls_cert
    key = settings.tls_key or cert
    if _CERT_MARK not in _read(cert, "TLS certificate"):
        raise TLSSetupError(f"TLS certificate {cert}: no PEM certificate in it")
    if _KEY_MARK not in _read(key, "TLS key"):
        raise TLSSetupError(f"TLS key {key}: no PEM private key in it")
    # Python's server defaults: its vetted cipher list, no compression, no renegotiation.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_encrypted_key)
    except TLSSetupError as exc:
        raise TLSSetupError(f"TLS key {key} {exc}") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSSetupError(f"TLS key {key} does not match certificate {cert}") from None
        raise TLSSetupError(
            f"TLS certificate {cert} with key {key}: cannot load them ({_reason(exc)})"
        ) from None
    if settings.tls_client_ca is not None:
        ca = settings.tls_client_ca
        if _CERT_MARK not in _read(ca, "TLS client CA"):
            raise TLSSetupError(f"TLS client CA {ca}: no PEM certificate in it")
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise TLSSetupError(f"TLS client CA {ca}: cannot load it ({_reason(exc)})") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context
