"""Email alerts over STARTTLS: a real aiosmtpd server that requires STARTTLS before AUTH,
with a certificate from a test CA; the sender upgrades, checks the certificate, logs in and
sends. A certificate it does not trust fails the attempt and no password leaves."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from memcloud.alerts.runner import Sender
from memcloud.alerts.senders import Senders, SmtpServer
from memcloud.clock import FakeClock
from memcloud.control.memory import MemoryStore

MB = 1024 * 1024


class _Mailbox:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logins: list[tuple[bytes, bytes, bool]] = []
        self.mails: list[tuple[list[str], bool]] = []

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        with self.lock:
            self.logins.append((data.login, data.password, session.ssl is not None))
        return AuthResult(success=data.password == b"pw-secret")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), session.ssl is not None))
        return "250 OK"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp(ca: trustme.CA) -> Iterator[tuple[int, _Mailbox]]:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    mailbox = _Mailbox()
    port = _port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


def _deliver(port: int, client_tls: ssl.SSLContext) -> tuple[str, str]:
    store, clock = MemoryStore(), FakeClock()
    cache = store.create_cache("demo", MB)
    config = store.create_delivery_config(cache.id, delivery_type="email", email="ops@x.test")
    alert = store.create_alert(
        cache.id, trigger_type="hit_rate", trigger_threshold=50, delivery_config_id=config.id
    )
    body = {"message": "[memcloud] hit rate is 3%, under 50%"}
    store.observe_alert(alert.id, value=3.0, firing=True, at=clock.now(), payload=body)
    server = SmtpServer("127.0.0.1", port, username="mailer", password="pw-secret")
    senders = Senders(smtp=server, smtp_from="alerts@memcloud.test", tls=client_tls)
    asyncio.run(Sender(store, senders, clock).tick())
    (record,) = store.list_deliveries(cache.id)
    return record.status, record.last_error


def test_starttls_is_used_when_offered_and_the_password_goes_only_over_tls(
    smtp: tuple[int, _Mailbox], ca: trustme.CA
) -> None:
    port, mailbox = smtp
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    assert _deliver(port, client_tls) == ("delivered", "")
    assert mailbox.logins == [(b"mailer", b"pw-secret", True)]
    assert mailbox.mails == [(["ops@x.test"], True)]


def test_an_untrusted_certificate_fails_before_any_password(
    smtp: tuple[int, _Mailbox],
) -> None:
    port, mailbox = smtp
    status, error = _deliver(port, ssl.create_default_context())
    assert status == "pending" and "CERTIFICATE_VERIFY_FAILED" in error
    assert "pw-secret" not in error
    assert mailbox.logins == [] and mailbox.mails == []
