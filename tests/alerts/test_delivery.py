"""Delivering alert messages to real receivers on loopback, with the sender's clock faked:
retries with backoff until delivered or failed for good, no redirect followed, private
targets refused unless the operator allows them, Slack's body, SMTP refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from memcloud.alerts.runner import RETRY_DELAYS, Sender
from memcloud.alerts.senders import Senders, SmtpServer
from memcloud.clock import FakeClock
from memcloud.control.alert_records import DeliveryRecord
from memcloud.control.memory import MemoryStore

from .receivers import HttpReceiver, http_receiver, smtp_receiver

MB = 1024 * 1024


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def _queued(store: MemoryStore, clock: FakeClock, **config: str) -> tuple[int, DeliveryRecord]:
    cache = store.create_cache("demo", MB)
    made = store.create_delivery_config(cache.id, **config)
    alert = store.create_alert(
        cache.id, trigger_type="hit_rate", trigger_threshold=50, delivery_config_id=made.id
    )
    body = {"event": "fired", "message": "[memcloud] hit rate is 3%, under 50%"}
    delivery = store.observe_alert(alert.id, value=3.0, firing=True, at=clock.now(), payload=body)
    assert delivery is not None
    return cache.id, delivery


def _sender(
    store: MemoryStore,
    clock: FakeClock,
    *,
    allow_private: bool = True,
    smtp: SmtpServer | None = None,
) -> Sender:
    senders = Senders(smtp=smtp, smtp_from="alerts@memcloud.test", allow_private=allow_private)
    return Sender(store, senders, clock)


def test_a_failed_delivery_is_retried_after_its_backoff_until_delivered(
    hook: HttpReceiver,
) -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(store, clock, delivery_type="webhook", webhook_url=hook.url())
    sender = _sender(store, clock)
    hook.statuses = [500, 503]
    assert asyncio.run(sender.tick()) == 1
    (first,) = store.list_deliveries(cache_id)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "HTTP 500")
    clock.advance(RETRY_DELAYS[0] - 1)
    assert asyncio.run(sender.tick()) == 0  # not yet
    clock.advance(1)
    assert asyncio.run(sender.tick()) == 1
    (second,) = store.list_deliveries(cache_id)
    assert (second.status, second.attempts, second.last_error) == ("pending", 2, "HTTP 503")
    clock.advance(RETRY_DELAYS[1])
    assert asyncio.run(sender.tick()) == 1
    (done,) = store.list_deliveries(cache_id)
    assert (done.status, done.attempts, done.delivered_at) == ("delivered", 3, clock.now())
    assert len(hook.received("/hook")) == 3
    clock.advance(10_000)
    assert asyncio.run(sender.tick()) == 0


def test_a_delivery_fails_for_good_after_its_last_retry(hook: HttpReceiver) -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(store, clock, delivery_type="webhook", webhook_url=hook.url())
    sender = _sender(store, clock)
    hook.statuses = [500] * 20
    for delay in (*RETRY_DELAYS, 0.0):
        assert asyncio.run(sender.tick()) == 1
        clock.advance(delay)
    (failed,) = store.list_deliveries(cache_id)
    assert (failed.status, failed.attempts) == ("failed", len(RETRY_DELAYS) + 1)
    clock.advance(100_000)
    assert asyncio.run(sender.tick()) == 0


def test_redirects_are_not_followed(hook: HttpReceiver) -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(store, clock, delivery_type="webhook", webhook_url=hook.url())
    hook.statuses = [302]
    asyncio.run(_sender(store, clock).tick())
    (record,) = store.list_deliveries(cache_id)
    assert record.last_error == "HTTP 302 (redirects are not followed)"
    assert hook.received("/redirected") == [] and len(hook.received("/hook")) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_private_targets_are_refused_unless_the_operator_allows_them(
    hook: HttpReceiver, host: str
) -> None:
    store, clock = MemoryStore(), FakeClock()
    url = hook.url().replace("127.0.0.1", host)
    cache_id, _ = _queued(store, clock, delivery_type="slack", slack_url=url)
    asyncio.run(_sender(store, clock, allow_private=False).tick())
    (record,) = store.list_deliveries(cache_id)
    assert "which is not a public address" in record.last_error
    assert "--alert-private-targets" in record.last_error
    assert hook.requests == []


def test_slack_gets_the_message_in_its_channel(hook: HttpReceiver) -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(
        store, clock, delivery_type="slack", slack_url=hook.url("/slack"), slack_channel="#ops"
    )
    asyncio.run(_sender(store, clock).tick())
    (request,) = hook.received("/slack")
    assert json.loads(request.body) == {
        "text": "[memcloud] hit rate is 3%, under 50%",
        "channel": "#ops",
    }
    assert "x-memcloud-signature-256" not in request.headers
    assert store.list_deliveries(cache_id)[0].status == "delivered"


def test_email_without_an_smtp_server_or_without_tls_for_a_password_fails() -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(store, clock, delivery_type="email", email="ops@example.test")
    asyncio.run(_sender(store, clock).tick())
    assert "no SMTP server is configured" in store.list_deliveries(cache_id)[0].last_error
    with smtp_receiver() as smtp:
        server = SmtpServer("127.0.0.1", smtp.port, username="mailer", password="pw-secret")
        clock.advance(RETRY_DELAYS[0])
        asyncio.run(_sender(store, clock, smtp=server).tick())
        (record,) = store.list_deliveries(cache_id)
        assert "offers no STARTTLS: the password is not sent" in record.last_error
        assert "pw-secret" not in record.last_error and "pw-secret" not in repr(server)
        assert smtp.received() == []


def test_email_is_sent_without_a_password_on_plain_smtp() -> None:
    store, clock = MemoryStore(), FakeClock()
    cache_id, _ = _queued(store, clock, delivery_type="email", email="ops@example.test")
    with smtp_receiver() as smtp:
        asyncio.run(_sender(store, clock, smtp=SmtpServer("127.0.0.1", smtp.port)).tick())
        ((sender, to, message),) = smtp.received()
    assert (sender, to) == ("alerts@memcloud.test", ["ops@example.test"])
    assert message["Subject"] == "[memcloud] hit rate is 3%, under 50%"
    assert store.list_deliveries(cache_id)[0].status == "delivered"


def test_a_cache_sends_a_bounded_number_of_messages_an_hour(hook: HttpReceiver) -> None:
    store, clock = MemoryStore(), FakeClock(1_700_000_000.0 - 1_700_000_000.0 % 3600)
    cache_id, _ = _queued(store, clock, delivery_type="webhook", webhook_url=hook.url())
    alert = store.list_alerts(cache_id)[0]
    for n, firing in enumerate((False, True, False), start=1):
        store.observe_alert(alert.id, value=float(n), firing=firing, at=clock.now(), payload={})
    senders = Senders(smtp=None, smtp_from="alerts@memcloud.test", allow_private=True)
    sender = Sender(store, senders, clock, sends_per_hour=2)
    assert asyncio.run(sender.tick()) == 4
    assert len(hook.received("/hook")) == 2
    waiting = [d for d in store.list_deliveries(cache_id) if d.status == "pending"]
    assert len(waiting) == 2
    assert all(d.last_error == "more than 2 messages this hour: postponed" for d in waiting)
    clock.advance(3599)
    assert asyncio.run(sender.tick()) == 0  # not before the next hour
    clock.advance(1)
    assert asyncio.run(sender.tick()) == 2
    assert len(hook.received("/hook")) == 4
    assert {d.status for d in store.list_deliveries(cache_id)} == {"delivered"}
