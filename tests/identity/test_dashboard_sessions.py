"""Dashboard and single sign-on sessions end when they should (issue 9, findings 1a, 1b, 9
and 10): over HTTP against a real `memcloud serve`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import api_status
from memcloud.control.open import open_store
from memcloud.provisioning.tokens import resource_token
from memcloud.testing import ServerProcess, wait_for

USER, PASSWORD, SALT = "memcachier", "super-secret", "2f97bfa52ca102f8874716e2eb1d3b4920ad0be4"
ENV = {
    "MEMCLOUD_PROVISION_USER": USER,
    "MEMCLOUD_PROVISION_PASSWORD": PASSWORD,
    "MEMCLOUD_SSO_SALT": SALT,
}
MIB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", env=ENV) as proc:
        yield proc


def _base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.api_port}"


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


def _sign_in(http: httpx.Client, base: str, username: str, password: str) -> str:
    """Sign in with a cache credential; the cache's dashboard path."""
    form = http.get(f"{base}/dashboard/login")
    reply = http.post(
        f"{base}/dashboard/login",
        data={"csrf": _csrf(form), "username": username, "password": password},
    )
    assert reply.status_code == 303, reply.text
    return str(reply.headers["location"])


def _opens(base: str, path: str, cookies: httpx.Cookies) -> bool:
    """Whether a captured cookie (sent by a fresh client) opens `path`."""
    with httpx.Client(follow_redirects=False, cookies=cookies) as thief:
        reply = thief.get(base + path)
    assert reply.status_code in (200, 303), reply.text
    return reply.status_code == 200


def _new_cache(server: ServerProcess, name: str) -> tuple[int, str, str]:
    """Create a cache and its credential as `memcloud cache create` does (the same store)."""
    with open_store(server.data_dir) as store:
        cache = store.create_cache(name, MIB)
        credential = store.create_credential(cache.id)
    return cache.id, credential.record.username, credential.password


def _seen(server: ServerProcess, username: str, password: str) -> bool:
    """Whether the server's directory knows a credential (it polls the store)."""
    assert server.api_port is not None
    return api_status(server.api_port, username, password) == 200


def test_sign_out_ends_the_session_server_side(server: ServerProcess) -> None:
    base = _base(server)
    with httpx.Client(follow_redirects=False) as http:
        home = _sign_in(http, base, server.username, server.password)
        captured = httpx.Cookies(http.cookies)
        assert _opens(base, home, captured)
        page = http.get(base + home)
        signed_out = http.post(f"{base}/dashboard/logout", data={"csrf": _csrf(page)})
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/dashboard/login"
    # The cookie a thief captured before the sign-out no longer opens anything.
    assert not _opens(base, home, captured)
    assert not _opens(base, home + "/settings", captured)


def test_operator_sign_out_ends_the_operator_session(server: ServerProcess) -> None:
    base = _base(server)
    token = (server.data_dir / "admin-token").read_text().strip()
    with httpx.Client(follow_redirects=False) as http:
        form = http.get(f"{base}/dashboard/admin/login")
        reply = http.post(
            f"{base}/dashboard/admin/login", data={"csrf": _csrf(form), "token": token}
        )
        assert reply.status_code == 303
        captured = httpx.Cookies(http.cookies)
        assert _opens(base, "/dashboard/admin", captured)
        page = http.get(f"{base}/dashboard/admin")
        http.post(f"{base}/dashboard/logout", data={"csrf": _csrf(page)})
    assert not _opens(base, "/dashboard/admin", captured)


def test_a_deleted_caches_cookie_never_opens_the_next_cache(server: ServerProcess) -> None:
    base = _base(server)
    old_id, old_user, old_password = _new_cache(server, "old-tenant")
    assert wait_for(lambda: _seen(server, old_user, old_password))
    with httpx.Client(follow_redirects=False) as http:
        home = _sign_in(http, base, old_user, old_password)
        captured = httpx.Cookies(http.cookies)
    assert home == f"/dashboard/caches/{old_id}"
    with open_store(server.data_dir) as store:
        store.delete_cache(old_id)
    new_id, new_user, new_password = _new_cache(server, "new-tenant")
    assert wait_for(lambda: _seen(server, new_user, new_password))
    # Neither the old cache's pages nor the new cache's open with the old cookie.
    assert not _opens(base, f"/dashboard/caches/{old_id}/settings", captured)
    assert not _opens(base, f"/dashboard/caches/{new_id}/settings", captured)


def _sso(base: str, uuid: str, timestamp: int, token: str) -> httpx.Response:
    return httpx.post(
        f"{base}/sso/login",
        data={"resource_id": uuid, "timestamp": str(timestamp), "resource_token": token},
    )


def _provision(base: str, uuid: str) -> None:
    reply = httpx.post(
        f"{base}/heroku/resources", json={"uuid": uuid, "plan": "dev"}, auth=(USER, PASSWORD)
    )
    assert reply.status_code in (200, 202), reply.text


def test_a_deprovisioned_resources_sso_session_never_opens_the_next(
    server: ServerProcess,
) -> None:
    base = _base(server)
    first, second = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
    _provision(base, first)
    now = int(time.time())
    opened = _sso(base, first, now, resource_token(first, SALT, str(now)))
    assert opened.status_code == 302
    path = opened.headers["location"]
    assert _opens(base, path, opened.cookies)
    gone = httpx.delete(f"{base}/heroku/resources/{first}", auth=(USER, PASSWORD))
    assert gone.status_code == 204
    _provision(base, second)
    with open_store(server.data_dir) as store:
        second_id = store.find_cache(second).id
    assert not _opens(base, path, opened.cookies)
    assert not _opens(base, f"/dashboard/caches/{second_id}", opened.cookies)


def test_sso_tokens_never_replay_padded_or_after_a_restart(server: ServerProcess) -> None:
    uuid = "cccccccc-0000-0000-0000-000000000003"
    _provision(_base(server), uuid)
    now = int(time.time())
    token = resource_token(uuid, SALT, str(now))
    assert _sso(_base(server), uuid, now, token).status_code == 302
    # The same token in another spelling the token check accepts is the same token.
    for spelling in (f" {token} ", token.upper(), f"\t{token}\n"):
        replay = _sso(_base(server), uuid, now, spelling)
        assert replay.status_code == 403 and "used already" in replay.text
    second = resource_token(uuid, SALT, str(now - 1))
    server.stop()
    server.start()
    # After a restart the used token is still remembered; an unused one still works.
    replay = _sso(_base(server), uuid, now, token)
    assert replay.status_code == 403 and "used already" in replay.text
    assert _sso(_base(server), uuid, now - 1, second).status_code == 302


def test_deleting_a_credential_ends_its_sessions(server: ServerProcess) -> None:
    base = _base(server)
    cache_id, username, password = _new_cache(server, "two-credentials")
    with open_store(server.data_dir) as store:
        second = store.create_credential(cache_id)
    assert wait_for(lambda: _seen(server, second.record.username, second.password))
    with httpx.Client(follow_redirects=False) as http:
        home = _sign_in(http, base, second.record.username, second.password)
        captured = httpx.Cookies(http.cookies)
    with httpx.Client(follow_redirects=False) as http:
        other = _sign_in(http, base, username, password)
        kept = httpx.Cookies(http.cookies)
    assert _opens(base, home, captured)
    with open_store(server.data_dir) as store:
        store.delete_credential(second.record.id)
    assert not _opens(base, home, captured)
    # The cache's other credential keeps its session.
    assert _opens(base, other, kept)
