"""The partner API warns when a sale overcommits the server's memory (issue 14 item 9):
2xx still, with the warning in `warnings` and the `X-Memcloud-Warning` header."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from memcloud.testing import ServerProcess

USER, PASSWORD = "platform", "partner-secret"
BIG, SMALL = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"MEMCLOUD_PROVISION_USER": USER, "MEMCLOUD_PROVISION_PASSWORD": PASSWORD}
    data_dir = tmp_path_factory.mktemp("overcommit") / "data"
    # The default cache (25 MB) and a 16 MB plan fit in 48 MB; a 64 MB plan does not.
    args = ("--memory", "48MB", "--plans", "small=16MB,big=64MB")
    with ServerProcess(data_dir, *args, env=env) as proc:
        yield proc


def partner(server: ServerProcess, method: str, path: str, body: dict[str, str]) -> httpx.Response:
    url = f"http://127.0.0.1:{server.api_port}/heroku/resources{path}"
    return httpx.request(method, url, json=body, auth=(USER, PASSWORD), timeout=10)


def test_provisioning_and_plan_changes_warn_when_plans_exceed_the_memory(
    server: ServerProcess,
) -> None:
    fits = partner(server, "POST", "", {"uuid": SMALL, "plan": "small"})
    assert fits.status_code == 200, fits.text
    assert fits.json()["warnings"] == []
    assert "x-memcloud-warning" not in fits.headers

    # 25 + 16 + 64 MB of plans on 48 MB: sold, with the operator's warning.
    over = partner(server, "POST", "", {"uuid": BIG, "plan": "big"})
    assert over.status_code == 200, over.text
    body = over.json()
    assert body["config"]["MEMCACHIER_USERNAME"] and body["message"]
    (warning,) = body["warnings"]
    assert "plans on cluster default (105MB) exceed the memory of its live nodes (48MB)" in (
        warning
    )
    assert over.headers["x-memcloud-warning"] == warning
    # The operator's own view says the same.
    assert [c["name"] for c in server.cli_json("cache", "list")].count(BIG) == 1

    # Down to the small plan: 57 MB on 48 MB still overcommits ...
    down = partner(server, "PUT", f"/{BIG}", {"plan": "small"})
    assert down.status_code == 200, down.text
    assert "(57MB) exceed" in down.json()["warnings"][0]
    # ... and without the small resource it fits again: no warning.
    assert partner(server, "DELETE", f"/{SMALL}", {}).status_code == 204
    again = partner(server, "PUT", f"/{BIG}", {"plan": "small"})
    assert again.status_code == 200 and again.json()["warnings"] == []
    assert "x-memcloud-warning" not in again.headers
