"""Every route refuses what it must, with the reference's status and body, never a 500."""

from __future__ import annotations

import base64

import pytest

from .conftest import Api, Cred

V1_FORBIDDEN = "You are not authorized to perform this action."
V2_FORBIDDEN = {"message": "Forbidden to access cache with this ID."}

# (method, path template); {id} is the cache id, {cred} a credential of that cache.
V1_ROUTES = [
    ("GET", "/api/v1/{id}/stats"),
    ("GET", "/api/v1/{id}/history"),
    ("POST", "/api/v1/{id}/flush"),
    ("GET", "/api/v1/{id}/credentials"),
    ("POST", "/api/v1/{id}/credentials"),
    ("PATCH", "/api/v1/{id}/credentials/{cred}"),
    ("POST", "/api/v1/{id}/credentials/{cred}"),
    ("DELETE", "/api/v1/{id}/credentials/{cred}"),
    ("POST", "/api/v1/{id}/credentials/primary/{cred}"),
    ("DELETE", "/api/v1/{id}/credentials/primary/{cred}"),
]
V2_ROUTES = [
    ("GET", "/api/v2/caches/{id}/info"),
    ("GET", "/api/v2/caches/{id}/credentials"),
    ("POST", "/api/v2/caches/{id}/credentials"),
    ("PATCH", "/api/v2/caches/{id}/credentials/{cred}"),
    ("DELETE", "/api/v2/caches/{id}/credentials/{cred}"),
    ("POST", "/api/v2/caches/{id}/credentials/primary/{cred}"),
    ("POST", "/api/v2/caches/{id}/flush"),
    ("POST", "/api/v2/caches/{id}/reset_stats"),
    ("GET", "/api/v2/caches/{id}/stats"),
    ("POST", "/api/v2/caches/{id}/enable_cache"),
    ("GET", "/api/v2/caches/{id}/insight/processed_stats?names=hit_rate"),
    ("GET", "/api/v2/caches/{id}/insight/processed_stats/per_server?names=hit_rate"),
    ("GET", "/api/v2/caches/{id}/flush_log"),
]
ALL = V1_ROUTES + V2_ROUTES


@pytest.fixture(scope="module")
def others(api: Api) -> dict[str, Cred]:
    """A credential without api capability, one without flush, and another cache's."""
    return {
        "no_api": api.new_credential("default", "--no-api"),
        "no_flush": api.new_credential("default", "--no-flush"),
        "other": api.new_cache("other"),
    }


def _path(template: str, cache_id: object, cred: str = "NOSUCH") -> str:
    return template.format(id=cache_id, cred=cred)


def _expect(path: str, status_v1: int, body_v1: object, status_v2: int, body_v2: object):  # type: ignore[no-untyped-def]
    if path.startswith("/api/v2/"):
        return status_v2, body_v2
    return status_v1, body_v1


@pytest.mark.parametrize(("method", "template"), ALL)
def test_no_credentials(api: Api, method: str, template: str) -> None:
    path = _path(template, api.main.cache_id)
    reply = api.request(method, path)
    want = _expect(
        path, 403, V1_FORBIDDEN, 401, {"message": "Unauthorized to access cache with this ID."}
    )
    assert (reply.status_code, reply.json()) == want
    if reply.status_code == 401:
        assert reply.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(("method", "template"), ALL)
def test_bad_password(api: Api, method: str, template: str) -> None:
    path = _path(template, api.main.cache_id)
    wrong = Cred(api.main.username, "0" * 32, api.main.cache_id)
    reply = api.request(method, path, wrong)
    assert (reply.status_code, reply.json()) == _expect(
        path, 403, V1_FORBIDDEN, 401, {"message": "Bad user"}
    )


@pytest.mark.parametrize(
    "header",
    ["Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer abc", "Basic"],
)
@pytest.mark.parametrize(("method", "template"), ALL)
def test_malformed_authorization(api: Api, header: str, method: str, template: str) -> None:
    # A header that names no credential is an unknown credential (v2's "Bad user"), not a
    # missing one: the reference's 401 "Bad user" came from a mangled base64 line.
    path = _path(template, api.main.cache_id)
    reply = api.http.request(method, path, headers={"Authorization": header})
    assert (reply.status_code, reply.json()) == _expect(
        path, 403, V1_FORBIDDEN, 401, {"message": "Bad user"}
    )
    if path.startswith("/api/v2/"):
        assert reply.headers["www-authenticate"].startswith("Basic")
    else:
        assert "www-authenticate" not in reply.headers


@pytest.mark.parametrize(("method", "template"), ALL)
def test_no_api_capability(api: Api, others: dict[str, Cred], method: str, template: str) -> None:
    path = _path(template, api.main.cache_id)
    reply = api.request(method, path, others["no_api"])
    assert (reply.status_code, reply.json()) == _expect(path, 403, V1_FORBIDDEN, 403, V2_FORBIDDEN)


@pytest.mark.parametrize(("method", "template"), ALL)
def test_other_caches_credential(
    api: Api, others: dict[str, Cred], method: str, template: str
) -> None:
    path = _path(template, api.main.cache_id, others["other"].username)
    reply = api.request(method, path, others["other"])
    assert (reply.status_code, reply.json()) == _expect(path, 403, V1_FORBIDDEN, 403, V2_FORBIDDEN)


@pytest.mark.parametrize(("method", "template"), ALL)
def test_non_numeric_id(api: Api, method: str, template: str) -> None:
    path = _path(template, "abc")
    reply = api.request(method, path, api.main)
    assert (reply.status_code, reply.json()) == _expect(
        path,
        404,
        "No cache found.",
        400,
        {"message": "The specified cache ID is invalid (not a number)."},
    )


@pytest.mark.parametrize(("method", "template"), ALL)
def test_unknown_cache(api: Api, method: str, template: str) -> None:
    path = _path(template, 424242)
    reply = api.request(method, path, api.main)
    assert (reply.status_code, reply.json()) == _expect(
        path, 404, "No cache found.", 404, {"message": "Cache not found."}
    )


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("PUT", "/api/v1/{id}/stats"),
        ("DELETE", "/api/v1/{id}/flush"),
        ("GET", "/api/v1/{id}/flush"),
        ("POST", "/api/v1/login"),
        ("PUT", "/api/v1/{id}/credentials"),
        ("GET", "/api/v2/caches/{id}/flush"),
        ("GET", "/api/v2/caches/{id}/reset_stats"),
        ("POST", "/api/v2/caches/{id}/stats"),
        ("GET", "/api/v2/caches/{id}/enable_cache"),
        ("PUT", "/api/v2/caches/{id}/info"),
    ],
)
def test_wrong_method(api: Api, method: str, template: str) -> None:
    path = _path(template, api.main.cache_id)
    reply = api.request(method, path, api.main)
    assert reply.status_code == 405
    if path.startswith("/api/v2/"):
        assert reply.json() == {"message": "Method Not Allowed"}
    else:
        assert reply.json() == "Method not allowed."
    assert "allow" in reply.headers


def test_flush_needs_flush_capability(api: Api, others: dict[str, Cred]) -> None:
    cache_id = api.main.cache_id
    v1 = api.request("POST", f"/api/v1/{cache_id}/flush", others["no_flush"])
    assert (v1.status_code, v1.json()) == (403, V1_FORBIDDEN)
    v2 = api.request("POST", f"/api/v2/caches/{cache_id}/flush", others["no_flush"])
    assert (v2.status_code, v2.json()) == (403, V2_FORBIDDEN)
    # Reading is fine without flush.
    assert api.request("GET", f"/api/v1/{cache_id}/stats", others["no_flush"]).status_code == 200


def test_login_refusals(api: Api, others: dict[str, Cred]) -> None:
    for path in ("/api/v1/login", "/api/login", "/api//v1///login/"):
        anonymous = api.request("GET", path)
        assert (anonymous.status_code, anonymous.json()) == (403, V1_FORBIDDEN)
        no_api = api.request("GET", path, others["no_api"])
        assert (no_api.status_code, no_api.json()) == (403, V1_FORBIDDEN)
        signed = api.request("GET", path, api.main)
        assert (signed.status_code, signed.json()) == (200, {"cache_id": api.main.cache_id})
    assert api.request("GET", "/api/v1/login", others["other"]).json() == {
        "cache_id": others["other"].cache_id
    }


def test_unknown_routes(api: Api) -> None:
    v1 = api.request("GET", "/api/v1/1/nothing", api.main)
    assert (v1.status_code, v1.json()) == (404, "Not found.")
    # (alerts exist since issue 12: a route no version has)
    reply = api.request("GET", f"/api/v2/caches/{api.main.cache_id}/nothing", api.main)
    assert (reply.status_code, reply.json()) == (404, {"message": "Not Found"})
