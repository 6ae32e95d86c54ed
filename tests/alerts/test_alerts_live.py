"""Alerts end to end on a real `memcloud serve`: a hit rate driven under the threshold by
real gets that miss fires once, reaches a real SMTP server and a real webhook receiver
(signed), and resolves once when real hits bring it back; the API lists the deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess

from .conftest import delivering_to
from .receivers import HttpReceiver, SmtpReceiver

EVALUATE_SECONDS = "0.3"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("alerts") / "data"
    env = {"MEMCLOUD_ALERT_SECONDS": EVALUATE_SECONDS, "MEMCLOUD_LOGIN_FREE_FAILURES": "1000"}
    args = delivering_to(smtp)
    with ServerProcess(data, *args, env=env) as proc:
        yield proc


def _http(proc: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{proc.api_port}/api/v2/caches/1/alerts",
        auth=(proc.username, proc.password),
        timeout=10,
    )


def _drive(client: Client, until: Callable[[], bool], *, hit: bool, timeout: float = 30) -> None:
    """Real gets (all hits, or all misses) until `until()` holds."""
    client.set("present", b"v")
    deadline = time.monotonic() + timeout
    n = 0
    while not until():
        assert time.monotonic() < deadline, "the alert did not change state in time"
        for _ in range(20):
            n += 1
            client.get("present" if hit else f"missing-{n}")
        time.sleep(0.05)


def test_a_low_hit_rate_fires_once_to_email_and_webhook_and_resolves(
    server: ServerProcess, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    api = _http(server)
    assert api.get("").json() == []
    made = api.post("/configs", json={"delivery_type": "email", "email": "ops@example.test"})
    assert (made.status_code, made.json()) == (201, "Added alert delivery config successfully.")
    email_config = int(made.headers["location"].rsplit("/", 1)[1])
    webhook = api.post("/configs", json={"delivery_type": "webhook", "webhook_url": hook.url()})
    assert webhook.status_code == 201
    secret = webhook.json()["webhook_secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert all("webhook_secret" not in c for c in api.get("/configs").json())
    for config in (email_config, webhook.json()["id"]):
        created = api.post(
            "",
            json={
                "trigger_type": "hit_rate",
                "trigger_threshold": 50,
                "delivery_config_id": config,
                "description": "hits are too rare",
            },
        )
        assert (created.status_code, created.json()) == (201, "Added alert successfully.")

    client = Client(server.address, timeout=5)
    assert client.set(server.username, server.password, noreply=False)

    def everywhere(count: int) -> bool:
        return len(smtp.received()) >= count and len(hook.received("/hook")) >= count

    _drive(client, lambda: everywhere(1), hit=False)
    assert [a["state"] for a in api.get("").json()] == ["firing", "firing"]
    _drive(client, lambda: everywhere(2), hit=True)
    assert [a["state"] for a in api.get("").json()] == ["ok", "ok"]
    # More good intervals: no message while it stays resolved.
    for _ in range(5):
        for _ in range(20):
            client.get("present")
        time.sleep(0.3)
    assert len(smtp.received()) == 2 and len(hook.received("/hook")) == 2

    (sender, to, fired), (_, _, resolved) = smtp.received()
    assert (sender, to, fired["From"], fired["To"]) == (
        "alerts@memcloud.test",
        ["ops@example.test"],
        "alerts@memcloud.test",
        "ops@example.test",
    )
    assert fired["Subject"] == "[memcloud] Alert on cache default: hit rate is 0%, under 50%"
    assert str(resolved["Subject"]).startswith("[memcloud] Resolved on cache default: hit rate")
    assert "description: hits are too rare" in fired.get_content()

    events = []
    for request in hook.received("/hook"):
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-memcloud-signature-256"] == expected
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        assert (body["cache"], body["trigger_type"], body["trigger_threshold"]) == (
            "default",
            "hit_rate",
            50.0,
        )
        events.append((body["event"], body["value"] < 50))
    assert events == [("fired", True), ("resolved", False)]

    deliveries = api.get("/deliveries").json()
    assert [(d["event"], d["status"], d["attempts"]) for d in deliveries] == [
        ("resolved", "delivered", 1),
        ("resolved", "delivered", 1),
        ("fired", "delivered", 1),
        ("fired", "delivered", 1),
    ]
    client.close()
    api.close()
