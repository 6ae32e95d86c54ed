"""The alert routes of API v2 (reference §2.6) on a real server: each route's happy path
and refusals with the hosted service's statuses and messages, `/alerts/configs` winning
over `/alerts/<id>`, and one tenant never reaching another's alerts."""

from __future__ import annotations

import pytest

from memcloud.control.open import open_store

from .conftest import Api, Cred

SLACK: dict[str, object] = {
    "delivery_type": "slack",
    "slack_url": "https://hooks.slack.com/services/T000/B000/XXXX",
    "slack_channel": "#alerts",
}


def _path(cred: Cred, tail: str = "") -> str:
    return f"/api/v2/caches/{cred.cache_id}/alerts{tail}"


def _config(api: Api, cred: Cred, body: dict[str, object] = SLACK) -> int:
    reply = api.request("POST", _path(cred, "/configs"), cred, json=body)
    assert reply.status_code == 201, reply.text
    return int(reply.headers["location"].rsplit("/", 1)[1])


def _alert(api: Api, cred: Cred, config: int, **fields: object) -> int:
    body = {"trigger_type": "memory_usage", "trigger_threshold": 90, "delivery_config_id": config}
    reply = api.request("POST", _path(cred), cred, json={**body, **fields})
    assert (reply.status_code, reply.json()) == (201, "Added alert successfully."), reply.text
    return int(reply.headers["location"].rsplit("/", 1)[1])


def test_delivery_configs_are_listed_in_the_reference_shape(api: Api) -> None:
    cred = api.new_cache("configs")
    assert api.request("GET", _path(cred, "/configs"), cred).json() == []
    # Fields of other types are not kept: they answer "".
    extra = {**SLACK, "email": "a@b.c", "webhook_url": "http://10.0.0.1/"}
    reply = api.request("POST", _path(cred, "/configs"), cred, json=extra)
    assert (reply.status_code, reply.json()) == (201, "Added alert delivery config successfully.")
    config = int(reply.headers["location"].rsplit("/", 1)[1])
    assert api.request("GET", _path(cred, "/configs"), cred).json() == [
        {
            "id": config,
            "delivery_type": "slack",
            "email": "",
            "slack_url": SLACK["slack_url"],
            "slack_channel": "#alerts",
            "webhook_url": "",
        }
    ]
    gone = api.request("DELETE", _path(cred, f"/configs/{config}"), cred)
    assert (gone.status_code, gone.content) == (204, b"")
    assert api.request("GET", _path(cred, "/configs"), cred).json() == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "An alert delivery config requires a type."),
        ({"email": "a@b.c"}, "An alert delivery config requires a type."),
        ({"delivery_type": "pager"}, "delivery_type must be one of email, slack, webhook"),
        ({"delivery_type": "slack", "slack_url": "ftp://x/"}, "only http and https"),
        ({"delivery_type": "slack", "slack_url": "https://u:p@x/"}, "no user:password@"),
        ({"delivery_type": "webhook", "webhook_url": "file:///etc/passwd"}, "only http"),
        ({"delivery_type": "email", "email": "a@b.c\r\nBcc: x@y.z"}, "one address"),
        ({"delivery_type": "email", "email": 5}, "email must be a string"),
    ],
)
def test_a_bad_delivery_config_is_refused_with_the_reference_words(
    api: Api, body: dict[str, object], words: str
) -> None:
    reply = api.request("POST", _path(api.main, "/configs"), api.main, json=body)
    assert reply.status_code == 400
    message = reply.json()["message"]
    assert message.startswith("The alert delivery config could not be added.") and words in message


def test_alerts_create_get_update_list_delete(api: Api) -> None:
    cred = api.new_cache("alerts")
    config = _config(api, cred)
    alert = _alert(api, cred, config, description="almost full")
    expected = {
        "id": alert,
        "trigger_type": "memory_usage",
        "trigger_threshold": 90,
        "delivery_config_id": config,
        "description": "almost full",
        "enabled": True,
        "state": "ok",
        "value": None,
        "changed_at": None,
    }
    assert api.request("GET", _path(cred, f"/{alert}"), cred).json() == expected
    # The reference's example update: only `id` and `enabled`.
    update = api.request(
        "PUT", _path(cred, f"/{alert}"), cred, json={"id": alert, "enabled": False}
    )
    assert (update.status_code, update.json()) == (201, "Updated alert successfully.")
    assert api.request("GET", _path(cred), cred).json() == [{**expected, "enabled": False}]
    deleted = api.request("DELETE", _path(cred, f"/{alert}"), cred)
    assert (deleted.status_code, deleted.json()) == (201, "Deleted alert successfully.")
    assert api.request("GET", _path(cred), cred).json() == []


def test_alert_refusals_use_the_reference_words(api: Api) -> None:
    cred = api.main
    config = _config(api, cred)
    alert = _alert(api, cred, config)
    for body, words in (
        ({"trigger_threshold": 5, "delivery_config_id": config}, "An alert requires a type."),
        ({"trigger_type": "hit_rate", "delivery_config_id": config}, "requires trigger_threshold"),
        ({"trigger_type": "hit_rate", "trigger_threshold": 5}, "requires delivery_config_id"),
        (
            {"trigger_type": "hit_rate", "trigger_threshold": 120, "delivery_config_id": config},
            "from 0 to 100",
        ),
        (
            {"trigger_type": "uptime", "trigger_threshold": 1, "delivery_config_id": config},
            "trigger_type must be one of",
        ),
        (
            {"trigger_type": "hit_rate", "trigger_threshold": 1, "delivery_config_id": 10**12},
            "no alert delivery config",
        ),
    ):
        reply = api.request("POST", _path(cred), cred, json=body)
        assert reply.status_code == 400, body
        assert reply.json()["message"].startswith("The alert could not be added.")
        assert words in reply.json()["message"]
    not_json = api.request("POST", _path(cred), cred, content=b"[1]")
    assert "The body must be a JSON object." in not_json.json()["message"]
    bad = api.request("GET", _path(cred, "/abc"), cred)
    assert (bad.status_code, bad.json()) == (
        400,
        {"message": "The specified alert ID is invalid (not a number)."},
    )
    missing = api.request("GET", _path(cred, "/999999"), cred)
    assert (missing.status_code, missing.json()) == (404, {"message": "Alert not found."})
    for method, words in (("PUT", "could not be updated."), ("DELETE", "could not be deleted.")):
        reply = api.request(method, _path(cred, "/x1"), cred, json={"enabled": True})
        assert reply.status_code == 400
        assert reply.json()["message"] == (
            f"The specified alert ID is invalid (not a number), or the alert {words}"
        )
        reply = api.request(method, _path(cred, "/999999"), cred, json={"enabled": True})
        assert reply.status_code == 400 and words in reply.json()["message"]
    wrong = api.request("PUT", _path(cred, f"/{alert}"), cred, json={"enabled": "yes"})
    assert wrong.status_code == 400 and "enabled must be true or false" in wrong.text
    # A config an alert uses is not deleted.
    used = api.request("DELETE", _path(cred, f"/configs/{config}"), cred)
    assert used.status_code == 400
    assert used.json()["message"].startswith(
        "The specified alert delivery config ID is invalid (not a number), or the alert"
        " delivery config could not be deleted."
    )
    assert "is used by an alert" in used.json()["message"]
    bad_config = api.request("DELETE", _path(cred, "/configs/abc"), cred)
    assert bad_config.status_code == 400


def test_configs_wins_over_an_alert_id(api: Api) -> None:
    listed = api.request("GET", _path(api.main, "/configs"), api.main)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    deliveries = api.request("GET", _path(api.main, "/deliveries"), api.main)
    assert deliveries.status_code == 200 and isinstance(deliveries.json(), list)


def test_a_tenant_never_reaches_another_tenants_alerts(api: Api) -> None:
    owner = api.new_cache("owner")
    other = api.new_cache("intruder")
    config = _config(api, owner)
    alert = _alert(api, owner, config)
    # The other cache's path with the intruder's credential: 403 on every route.
    for method, tail in (
        ("GET", ""),
        ("GET", f"/{alert}"),
        ("PUT", f"/{alert}"),
        ("DELETE", f"/{alert}"),
        ("GET", "/configs"),
        ("POST", "/configs"),
        ("DELETE", f"/configs/{config}"),
        ("GET", "/deliveries"),
    ):
        reply = api.request(method, _path(owner, tail), other, json={"enabled": False})
        assert (reply.status_code, reply.json()) == (
            403,
            {"message": "Forbidden to access cache with this ID."},
        ), (method, tail)
    # The owner's ids on the intruder's own cache: nothing there.
    assert api.request("GET", _path(other, f"/{alert}"), other).status_code == 404
    assert api.request("DELETE", _path(other, f"/{alert}"), other).status_code == 400
    assert api.request("DELETE", _path(other, f"/configs/{config}"), other).status_code == 400
    foreign = api.request(
        "POST",
        _path(other),
        other,
        json={"trigger_type": "hit_rate", "trigger_threshold": 1, "delivery_config_id": config},
    )
    assert foreign.status_code == 400 and "no alert delivery config" in foreign.text
    assert api.request("GET", _path(owner, f"/{alert}"), owner).json()["enabled"] is True
    unauthenticated = api.request("GET", _path(owner))
    assert unauthenticated.status_code == 401


def test_deleting_a_cache_deletes_its_alerts(api: Api) -> None:
    cred = api.new_cache("doomed")
    _alert(api, cred, _config(api, cred))
    api.proc.cli("cache", "delete", "doomed")
    with open_store(api.proc.data_dir) as store:
        assert [a for a in store.list_alerts() if a.cache_id == cred.cache_id] == []


def test_the_openapi_document_has_every_alert_route(api: Api) -> None:
    paths = api.request("GET", "/openapi.json").json()["paths"]
    base = "/api/v2/caches/{cache_id}/alerts"
    assert set(paths[base]) == {"get", "post"}
    assert set(paths[base + "/{alert_id}"]) == {"get", "put", "delete"}
    assert set(paths[base + "/configs"]) == {"get", "post"}
    assert set(paths[base + "/configs/{config_id}"]) == {"delete"}
    alert_schema = paths[base + "/{alert_id}"]["get"]["responses"]["200"]["content"]
    assert "Alert" in str(alert_schema)
    ours = [
        op["operationId"] for path, p in paths.items() if path.startswith(base) for op in p.values()
    ]
    everyone = [op.get("operationId") for p in paths.values() for op in p.values()]
    assert len(ours) == 9 and all(everyone.count(o) == 1 for o in ours)
