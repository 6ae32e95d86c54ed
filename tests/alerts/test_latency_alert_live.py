"""The `latency` alert end to end on a real two-node `memcloud serve` whose latency probe
runs every 0.2 s: a threshold below any real probe (1 µs) fires once and reaches a real
SMTP server and a real webhook receiver (signed); raised by PUT it is `ok` again without a
message (as any change of threshold); then node 1 stalled (SIGSTOP) makes the probe's get
wait, the alert fires, and once the node answers again it resolves with exactly one
message."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memcloud.server.supervisor import node_info_path
from memcloud.testing import ServerProcess, wait_for

from .conftest import delivering_to
from .receivers import HttpReceiver, SmtpReceiver

# A stall of node 1 (shorter than the 3 s after which the registry counts it down) makes
# the probe's get on it take about this long; a threshold well under it and far over a
# local get's latency (about a millisecond, tens under load).
STALL_SECONDS = 1.2
STALLED_THRESHOLD_US = 250_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("latency-alerts") / "data"
    env = {"MEMCLOUD_ALERT_SECONDS": "0.3", "MEMCLOUD_LATENCY_PROBE_SECONDS": "0.2"}
    args = delivering_to(smtp)
    with ServerProcess(data, *args, env=env, nodes=2) as proc:
        yield proc


def _webhook_bodies(hook: HttpReceiver, secret: str) -> list[dict[str, Any]]:
    bodies = []
    for request in hook.received("/hook"):
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-memcloud-signature-256"] == expected
        assert request.headers["content-type"] == "application/json"
        bodies.append(json.loads(request.body))
    return bodies


def _microseconds(subject: str, pattern: str) -> float:
    found = re.fullmatch(pattern, subject)
    assert found, subject
    return float(found.group(1))


def test_a_latency_alert_fires_from_the_probe_and_resolves_once_a_stalled_node_answers(
    server: ServerProcess, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{server.api_port}/api/v2/caches/1/alerts",
        auth=(server.username, server.password),
        timeout=10,
    )
    made = api.post("/configs", json={"delivery_type": "email", "email": "ops@example.test"})
    assert made.status_code == 201
    email_config = int(made.headers["location"].rsplit("/", 1)[1])
    webhook = api.post("/configs", json={"delivery_type": "webhook", "webhook_url": hook.url()})
    assert webhook.status_code == 201
    secret = webhook.json()["webhook_secret"]
    alert_ids = []
    for config in (email_config, webhook.json()["id"]):
        created = api.post(
            "",
            json={
                "trigger_type": "latency",
                "trigger_threshold": 1,
                "delivery_config_id": config,
                "description": "gets are slow",
            },
        )
        assert (created.status_code, created.json()) == (201, "Added alert successfully.")
        alert_ids.append(int(created.headers["location"].rsplit("/", 1)[1]))

    def everywhere(count: int) -> bool:
        return len(smtp.received()) >= count and len(hook.received("/hook")) >= count

    # Every real probe takes more than 1 µs.
    assert wait_for(lambda: everywhere(1), timeout=30), "the latency alert did not fire"
    assert [a["state"] for a in api.get("").json()] == ["firing", "firing"]
    ((sender, to, fired),) = smtp.received()
    assert (sender, to, fired["To"]) == (
        "alerts@memcloud.test",
        ["ops@example.test"],
        "ops@example.test",
    )
    measured = _microseconds(
        str(fired["Subject"]),
        r"\[memcloud\] Alert on cache default: latency is ([0-9.]+) µs, over 1 µs",
    )
    # A real get on loopback: over 1 µs, under the probe's 5 s timeout.
    assert 1 < measured < 5_000_000
    assert "description: gets are slow" in fired.get_content()
    (body,) = _webhook_bodies(hook, secret)
    assert (body["event"], body["cache"], body["trigger_type"], body["trigger_threshold"]) == (
        "fired",
        "default",
        "latency",
        1.0,
    )
    assert 1 < body["value"] < 5_000_000
    assert body["message"].endswith(f"latency is {body['value']:.15g} µs, over 1 µs")

    # Raised: `ok` again at once, and no message for it (a change of threshold resets).
    for alert_id in alert_ids:
        raised = api.put(f"/{alert_id}", json={"trigger_threshold": STALLED_THRESHOLD_US})
        assert (raised.status_code, raised.json()) == (201, "Updated alert successfully.")
    time.sleep(1.5)  # several probes and evaluations, all far under the threshold
    assert [a["state"] for a in api.get("").json()] == ["ok", "ok"]
    assert len(smtp.received()) == 1 and len(hook.received("/hook")) == 1

    # Node 1 stalls: the probe's get waits for it, as a client's would.
    pid = json.loads(node_info_path(server.data_dir, 1).read_text())["pid"]
    for _ in range(5):
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(STALL_SECONDS)
        finally:
            os.kill(pid, signal.SIGCONT)
        if wait_for(lambda: everywhere(2), timeout=5):
            break
    assert everywhere(2), "a stalled node did not fire the latency alert"
    # It answers again: resolved, once, and nothing more while it stays fast.
    assert wait_for(lambda: everywhere(3), timeout=30), "the latency alert did not resolve"
    assert [a["state"] for a in api.get("").json()] == ["ok", "ok"]
    time.sleep(1.5)
    assert len(smtp.received()) == 3 and len(hook.received("/hook")) == 3

    subjects = [str(message["Subject"]) for _, _, message in smtp.received()]
    stalled = _microseconds(
        subjects[1], r"\[memcloud\] Alert on cache default: latency is ([0-9.]+) µs, over 250000 µs"
    )
    assert stalled > STALLED_THRESHOLD_US
    recovered = _microseconds(
        subjects[2],
        r"\[memcloud\] Resolved on cache default: latency is ([0-9.]+) µs"
        r" \(alert when over 250000 µs\)",
    )
    assert recovered <= STALLED_THRESHOLD_US
    bodies = _webhook_bodies(hook, secret)
    events = [(b["event"], b["value"] > STALLED_THRESHOLD_US) for b in bodies]
    assert events == [("fired", False), ("fired", True), ("resolved", False)]
    deliveries = api.get("/deliveries").json()
    assert sorted((d["event"], d["status"]) for d in deliveries) == [
        ("fired", "delivered"),
        ("fired", "delivered"),
        ("fired", "delivered"),
        ("fired", "delivered"),
        ("resolved", "delivered"),
        ("resolved", "delivered"),
    ]
    api.close()
