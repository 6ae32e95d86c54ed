"""memcloud.control.clusters over records of a real (in-memory) control store: the one
answer every door gives for MEMCACHIER_SERVERS, switch_cluster's choices and refusals,
where a new cache goes, and the server panel's budgets and warnings."""

from __future__ import annotations

import dataclasses

from memcloud.control import clusters
from memcloud.control.memory import MemoryStore
from memcloud.control.models import DOWN_AFTER_SECONDS, NodeRecord

MB = 1 << 20


def _down(node: NodeRecord) -> NodeRecord:
    return dataclasses.replace(node, heartbeat_age=DOWN_AFTER_SECONDS + 1)


def _registry() -> tuple[MemoryStore, list[NodeRecord]]:
    store = MemoryStore()
    store.register_node("b.example:11212", cluster="eu-1", machine="b", memory=32 * MB)
    store.register_node("b.example:11211", cluster="eu-1", machine="b", memory=32 * MB)
    store.register_node("a.example:11211", cluster="us-1", machine="a", memory=0)
    store.register_node("c.example:11211", cluster="ap-1", machine="c", memory=8 * MB)
    nodes = store.list_nodes()
    return store, [*nodes[:3], _down(nodes[3])]  # ap-1's only node is down


def test_servers_are_the_live_nodes_of_the_cluster_by_address() -> None:
    _, nodes = _registry()
    assert clusters.servers_of(nodes, "eu-1", ["fallback:1"]) == [
        "b.example:11211",
        "b.example:11212",
    ]
    assert clusters.servers_of(nodes, "us-1", []) == ["a.example:11211"]
    assert clusters.servers_of(nodes, "ap-1", ["fallback:1"]) == []  # down: none to give
    assert clusters.servers_of(nodes, "nowhere", ["fallback:1"]) == []
    assert clusters.servers_of([], "eu-1", ["fallback:1"]) == ["fallback:1"]  # no registry


def test_switch_choices_and_refusals() -> None:
    _, nodes = _registry()
    assert clusters.clusters(nodes) == ["eu-1", "us-1", "ap-1"]
    assert clusters.live_clusters(nodes) == ["eu-1", "us-1"]
    assert clusters.can_switch(nodes, "eu-1") and clusters.can_switch(nodes, "ap-1")
    assert not clusters.can_switch(nodes[:2], "eu-1")
    assert clusters.switch_target(nodes, "eu-1") == "us-1"
    assert clusters.switch_target(nodes, "ap-1") == "eu-1"
    assert clusters.switch_target(nodes[:2], "eu-1") is None
    assert clusters.switch_refusal(nodes, "eu-1", "us-1") is None
    assert clusters.switch_refusal(nodes, "eu-1", "eu-1") == "The cache is already on cluster eu-1."
    assert clusters.switch_refusal(nodes, "eu-1", "mars") == "Unknown cluster mars."
    assert clusters.switch_refusal(nodes, "eu-1", "ap-1") == "Cluster ap-1 has no live server."


def test_a_new_cache_goes_where_a_live_node_serves_it() -> None:
    store, nodes = _registry()
    assert clusters.cluster_for_new_cache([]) == "default"
    assert clusters.cluster_for_new_cache(nodes) == "eu-1"
    assert clusters.cluster_for_new_cache([_down(n) for n in nodes]) == "default"
    store.register_node("d.example:11211", cluster="default", machine="d")
    assert clusters.cluster_for_new_cache(store.list_nodes()) == "default"


def test_budgets_sum_live_memory_against_the_plans_placed() -> None:
    store, nodes = _registry()
    store.create_cache("shop", 40 * MB, cluster="eu-1")
    store.create_cache("blog", 20 * MB, cluster="eu-1")
    store.create_cache("api", 500 * MB, cluster="us-1")
    store.create_cache("lost", MB, cluster="gone")
    by_name = {b.name: b for b in clusters.budgets(nodes, store.list_caches())}
    assert list(by_name) == ["eu-1", "us-1", "ap-1", "gone"]
    eu = by_name["eu-1"]
    assert (eu.up, eu.caches, eu.plans, eu.memory) == (2, 2, 60 * MB, 64 * MB)
    assert [n.address for n in eu.nodes] == ["b.example:11211", "b.example:11212"]
    assert not eu.overcommitted and clusters.overcommit_warning(eu) is None
    us = by_name["us-1"]
    assert us.memory is None and not us.overcommitted  # --memory 0: no bound
    ap = by_name["ap-1"]
    assert (ap.up, ap.memory) == (0, None)  # none up: no memory to count
    assert by_name["gone"].nodes == () and by_name["gone"].caches == 1

    store.update_cache(store.find_cache("blog").id, plan=30 * MB)
    eu = clusters.budgets(nodes, store.list_caches())[0]
    assert eu.overcommitted
    assert clusters.overcommit_warning(eu) == (
        "plans on cluster eu-1 (70 MB) exceed the memory of its live nodes (64 MB): caches"
        " will evict before they are full"
    )
    panel = clusters.panel_json(nodes, store.list_caches())
    assert panel["warnings"] == [clusters.overcommit_warning(eu)]
    assert panel["nodes_down"] == ["c.example:11211"]


def test_uptime_reads_in_two_units() -> None:
    assert [clusters.format_uptime(s) for s in (0, 8.9, 250, 7500, 300_000)] == [
        "0s",
        "8s",
        "4m 10s",
        "2h 5m",
        "3d 11h",
    ]
