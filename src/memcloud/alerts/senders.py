"""Sending one alert message: by email (SMTP), to a Slack incoming webhook, or to a signed
webhook. Each send either returns (delivered) or raises `SendFailed` with a short reason for
the delivery record; the reason never includes a password or a signing secret.

Every network step is bounded: `SEND_TIMEOUT_SECONDS` for the whole send, redirects never
followed, a receiver's body never read (its status line says delivered or not), and every
target host checked first (memcloud.alerts.targets).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import smtplib
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx

from memcloud.alerts.targets import TargetRefused, check_url, resolve_public
from memcloud.control.alert_records import DeliveryConfigRecord

__all__ = [
    "SEND_TIMEOUT_SECONDS",
    "SIGNATURE_HEADER",
    "SendFailed",
    "Senders",
    "SmtpServer",
    "new_signing_secret",
    "parse_smtp_url",
    "sign",
]

# A receiver that has not answered by then has failed this attempt (it is retried).
SEND_TIMEOUT_SECONDS: Final = 10.0
SIGNATURE_HEADER: Final = "X-Memcloud-Signature-256"
DELIVERY_HEADER: Final = "X-Memcloud-Delivery"
USER_AGENT: Final = "memcloud-alerts"
SECRET_BYTES: Final = 32
# Subjects stay on one line (RFC 5322's 998-character limit) instead of being folded at 78.
_MAIL_POLICY: Final = policy.SMTP.clone(max_line_length=998)


class SendFailed(Exception):
    """This attempt did not deliver; the message is for the delivery record."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """`--smtp-url`: smtp://user:password@host:port (STARTTLS when the server offers it;
    smtps:// for TLS from the start)."""

    host: str
    port: int
    implicit_tls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("use smtp://user:password@host:port or smtps://...")
    tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        implicit_tls=tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def new_signing_secret() -> str:
    """A webhook's signing secret: 32 random bytes, shown to the tenant once at creation."""
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_mail(server: SmtpServer, message: EmailMessage, context: ssl.SSLContext) -> None:
    """Blocking (run in a thread): STARTTLS when offered, and a password only over TLS."""
    smtp: smtplib.SMTP
    if server.implicit_tls:
        smtp = smtplib.SMTP_SSL(
            server.host, server.port, timeout=SEND_TIMEOUT_SECONDS, context=context
        )
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SEND_TIMEOUT_SECONDS)
    with smtp:
        smtp.ehlo()
        secure = server.implicit_tls
        if not secure and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            secure = True
        if server.username:
            if not secure:
                raise SendFailed("the SMTP server offers no STARTTLS: the password is not sent")
            smtp.login(server.username, server.password)
        smtp.send_message(message)


class Senders:
    """The three ways out, with the operator's SMTP server and SSRF choice."""

    def __init__(
        self,
        *,
        smtp: SmtpServer | None,
        smtp_from: str,
        allow_private: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.smtp = smtp
        self.smtp_from = smtp_from
        self.allow_private = allow_private
        # The SMTP server's certificate is checked against the system's CAs (tests: theirs).
        self.tls = tls or ssl.create_default_context()

    async def send(
        self, config: DeliveryConfigRecord, delivery_id: int, subject: str, payload: dict[str, Any]
    ) -> None:
        try:
            await asyncio.wait_for(
                self._send(config, delivery_id, subject, payload), SEND_TIMEOUT_SECONDS
            )
        except SendFailed:
            raise
        except TargetRefused as exc:
            raise SendFailed(str(exc)) from None
        except TimeoutError:
            raise SendFailed(f"no answer within {SEND_TIMEOUT_SECONDS:g} s") from None
        except (OSError, smtplib.SMTPException, httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def _send(
        self, config: DeliveryConfigRecord, delivery_id: int, subject: str, payload: dict[str, Any]
    ) -> None:
        if config.delivery_type == "email":
            await self._email(config.email, subject, payload)
        elif config.delivery_type == "slack":
            body: dict[str, Any] = {"text": subject}
            if config.slack_channel:
                body["channel"] = config.slack_channel
            await self._post(config.slack_url, json.dumps(body).encode(), {})
        else:
            data = json.dumps(payload, sort_keys=True).encode()
            headers = {
                SIGNATURE_HEADER: sign(config.webhook_secret, data),
                DELIVERY_HEADER: str(delivery_id),
            }
            await self._post(config.webhook_url, data, headers)

    async def _email(self, to: str, subject: str, payload: dict[str, Any]) -> None:
        if self.smtp is None:
            raise SendFailed("no SMTP server is configured (--smtp-url)")
        message = EmailMessage(policy=_MAIL_POLICY)
        message["From"] = self.smtp_from
        message["To"] = to
        message["Subject"] = subject
        lines = [subject, ""] + [f"{k}: {v}" for k, v in sorted(payload.items())]
        message.set_content("\n".join(lines) + "\n")
        await asyncio.to_thread(_send_mail, self.smtp, message, self.tls)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        check_url(url)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await resolve_public(parts.hostname or "", port, allow_private=self.allow_private)
        async with (
            httpx.AsyncClient(
                follow_redirects=False, timeout=SEND_TIMEOUT_SECONDS, trust_env=False
            ) as client,
            client.stream(
                "POST",
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    **headers,
                },
            ) as response,
        ):
            status = response.status_code
        if not 200 <= status < 300:
            note = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise SendFailed(f"HTTP {status}{note}")
