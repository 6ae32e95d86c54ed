"""The `latency` alert's measure, in process with the clock injected: the evaluator reads the
probe's samples of the cache's servers from a real control store and a real node, measures
the highest per-server mean in µs over the samples new since the last evaluation, fires
over the threshold and resolves once, and makes no value up for an interval without one."""

from __future__ import annotations

import asyncio

from memcloud.alerts.latency import LOOKBACK_SECONDS, highest_server_mean_us
from memcloud.alerts.runner import Evaluator
from memcloud.auth import Directory
from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.control.introspection import LatencySample
from memcloud.control.memory import MemoryStore
from memcloud.deployment import Deployment
from memcloud.nodes import LocalNode
from memcloud.service import Service
from memcloud.storage.registry import Registry

MB = 1024 * 1024
NODE = "127.0.0.1:11211"
ELSEWHERE = "10.9.9.9:11211"  # a node that does not serve the cache
INTERVAL = 60.0


def _setup(threshold: float) -> tuple[MemoryStore, FakeClock, Evaluator, int]:
    store, clock = MemoryStore(), FakeClock(1_700_000_000.0)
    cache = store.create_cache("shop", 64 * MB)
    config = store.create_delivery_config(
        cache.id, delivery_type="webhook", webhook_url="https://hooks.example.test/x"
    )
    alert = store.create_alert(
        cache.id,
        trigger_type="latency",
        trigger_threshold=threshold,
        delivery_config_id=config.id,
    )
    service = Service(Registry(0, MB), Directory([cache], [], 1), clock, Settings())
    deployment = Deployment(LocalNode(service, NODE), clock=clock)
    evaluator = Evaluator(store, deployment, Settings(), clock, interval=INTERVAL)
    return store, clock, evaluator, alert.id


def _add(store: MemoryStore, at: float, server: str, microseconds: float) -> None:
    store.add_latency_samples([LatencySample(at, server, int(microseconds * 1000))])


def test_the_measure_is_the_slowest_servers_mean_in_microseconds() -> None:
    assert highest_server_mean_us([]) is None
    samples = [
        LatencySample(1.0, "a:1", 100_000),
        LatencySample(2.0, "a:1", 300_000),  # a: mean 200 µs
        LatencySample(1.0, "b:1", 250_000),  # b: 250 µs, the slowest mean
        LatencySample(2.0, "c:1", 90_000),
        LatencySample(3.0, "c:1", 380_040),  # c: 235.02 µs, though its highest probe is 380
    ]
    assert highest_server_mean_us(samples) == 250.0
    assert highest_server_mean_us(samples[4:]) == 380.0


def test_latency_fires_over_its_threshold_and_resolves_once_from_the_probes_samples() -> None:
    store, clock, evaluator, alert_id = _setup(threshold=500)
    t0 = clock.now()
    # Before the first interval, and another node's: neither counts.
    _add(store, t0 - INTERVAL - 1, NODE, 90_000)
    _add(store, t0 - 10, ELSEWHERE, 90_000)
    assert asyncio.run(evaluator.tick()) == []
    (alert,) = store.list_alerts()
    assert (alert.firing, alert.value) == (False, None)  # nothing measured, nothing made up

    clock.advance(INTERVAL)
    _add(store, clock.now() - 40, NODE, 600)
    _add(store, clock.now() - 20, NODE, 900)  # mean 750 µs
    (fired,) = asyncio.run(evaluator.tick())
    assert fired.event == "fired"
    assert (fired.payload["trigger_type"], fired.payload["value"]) == ("latency", 750.0)
    assert fired.payload["message"] == (
        "[memcloud] Alert on cache shop: latency is 750 µs, over 500 µs"
    )

    # An interval without a probe sample: no value, the alert stays firing, no message.
    clock.advance(INTERVAL)
    assert asyncio.run(evaluator.tick()) == []
    (alert,) = store.list_alerts()
    assert (alert.firing, alert.value) == (True, 750.0)

    # Fast probes: resolved, once; the slow ones already counted are not counted again.
    clock.advance(INTERVAL)
    _add(store, clock.now() - 30, NODE, 120)
    _add(store, clock.now() - 5, NODE, 80)
    (resolved,) = asyncio.run(evaluator.tick())
    assert (resolved.event, resolved.payload["value"]) == ("resolved", 100.0)
    assert resolved.payload["message"] == (
        "[memcloud] Resolved on cache shop: latency is 100 µs (alert when over 500 µs)"
    )
    clock.advance(INTERVAL)
    _add(store, clock.now() - 1, NODE, 100)
    assert asyncio.run(evaluator.tick()) == []
    assert [d.event for d in store.list_deliveries(store.list_alerts()[0].cache_id)] == [
        "resolved",
        "fired",
    ]
    assert store.list_alerts()[0].id == alert_id


def test_a_sample_written_after_the_evaluation_it_is_stamped_in_counts_once_in_the_next() -> None:
    store, clock, evaluator, _ = _setup(threshold=500)
    _add(store, clock.now() - 1, NODE, 100)
    assert asyncio.run(evaluator.tick()) == []  # 100 µs: ok
    clock.advance(INTERVAL)
    _add(store, clock.now() - 1, NODE, 100)
    assert asyncio.run(evaluator.tick()) == []
    # A probe round stamped 2 s before that evaluation, written after it (a slow node).
    _add(store, clock.now() - 2, NODE, 3_000_000)
    clock.advance(1.0)
    (fired,) = asyncio.run(evaluator.tick())
    assert (fired.event, fired.payload["value"]) == ("fired", 3_000_000.0)
    assert fired.payload["message"].endswith("latency is 3000000 µs, over 500 µs")
    clock.advance(1.0)
    _add(store, clock.now() - 0.5, NODE, 100)
    (resolved,) = asyncio.run(evaluator.tick())  # the slow sample is not counted again
    assert (resolved.event, resolved.payload["value"]) == ("resolved", 100.0)
    # Older than the look-back when written: lost, not counted.
    clock.advance(INTERVAL)
    _add(store, clock.now() - INTERVAL - LOOKBACK_SECONDS - 1, NODE, 3_000_000)
    assert asyncio.run(evaluator.tick()) == []
