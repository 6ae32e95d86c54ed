"""The dashboard's sign-ins, the partner API and SSO go through the login throttle: after the
free allowance a prefix gets 429 + Retry-After; other prefixes go on at once (finding 7)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from memcloud.auth_throttle import FREE_FAILURES
from memcloud.provisioning.tokens import resource_token
from memcloud.testing import ServerProcess

from .conftest import PROVISION_PASSWORD, PROVISION_USER, SSO_SALT, admin_token

UUID = "dddddddd-0000-0000-0000-00000000000d"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MEMCLOUD_PROVISION_USER": PROVISION_USER,
        "MEMCLOUD_PROVISION_PASSWORD": PROVISION_PASSWORD,
        "MEMCLOUD_SSO_SALT": SSO_SALT,
    }
    with ServerProcess(tmp_path_factory.mktemp("throttle") / "data", env=env) as proc:
        yield proc


def client(server: ServerProcess, source: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{server.api_port}",
        transport=httpx.HTTPTransport(local_address=source),
        timeout=10,
    )


def _form(http: httpx.Client, path: str, **fields: str) -> httpx.Response:
    page = http.get(path)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return http.post(path, data={"csrf": csrf[1], **fields})


def _assert_429(reply: httpx.Response) -> None:
    assert reply.status_code == 429
    assert reply.headers["retry-after"].isdigit()
    assert 1 <= int(reply.headers["retry-after"]) <= 5


def test_dashboard_sign_in(server: ServerProcess) -> None:
    with client(server, "127.0.10.1") as guesser:
        for _ in range(FREE_FAILURES):
            reply = _form(guesser, "/dashboard/login", username=server.username, password="wrong")
            assert reply.status_code == 401
        reply = _form(
            guesser, "/dashboard/login", username=server.username, password=server.password
        )
        _assert_429(reply)
        assert "Too many failed sign-ins. Try again in" in reply.text
    with client(server, "127.0.20.1") as honest:
        reply = _form(
            honest, "/dashboard/login", username=server.username, password=server.password
        )
        assert reply.status_code == 303
        assert reply.headers["location"] == "/dashboard/caches/1"


def test_admin_token_sign_in(server: ServerProcess) -> None:
    with client(server, "127.0.11.1") as guesser:
        for _ in range(FREE_FAILURES):
            assert _form(guesser, "/dashboard/admin/login", token="wrong").status_code == 401
        _assert_429(_form(guesser, "/dashboard/admin/login", token=admin_token(server)))
    with client(server, "127.0.21.1") as operator:
        reply = _form(operator, "/dashboard/admin/login", token=admin_token(server))
        assert reply.status_code == 303
        assert reply.headers["location"] == "/dashboard/admin"


def test_partner_api(server: ServerProcess) -> None:
    body = {"uuid": UUID, "plan": "100"}
    with client(server, "127.0.12.1") as guesser:
        for _ in range(FREE_FAILURES):
            reply = guesser.post("/heroku/resources", json=body, auth=(PROVISION_USER, "wrong"))
            assert reply.status_code == 401
        reply = guesser.post(
            "/heroku/resources", json=body, auth=(PROVISION_USER, PROVISION_PASSWORD)
        )
        _assert_429(reply)
        assert reply.json() == {"message": "too many failed logins; try again later"}
    with client(server, "127.0.22.1") as platform:
        reply = platform.post(
            "/heroku/resources", json=body, auth=(PROVISION_USER, PROVISION_PASSWORD)
        )
        assert reply.status_code == 200
        assert reply.json()["id"] == UUID


def test_sso_bad_tokens(server: ServerProcess) -> None:
    uuid = "dddddddd-0000-0000-0000-00000000005e"
    with client(server, "127.0.23.1") as platform:
        body = {"uuid": uuid, "plan": "100"}
        auth = (PROVISION_USER, PROVISION_PASSWORD)
        reply = platform.post("/heroku/resources", json=body, auth=auth)
        assert reply.status_code == 200
    now = str(int(time.time()))
    token = resource_token(uuid, SSO_SALT, now)
    with client(server, "127.0.13.1") as guesser:
        for guess in range(FREE_FAILURES):
            form = {"resource_id": uuid, "timestamp": now, "resource_token": f"{guess:040x}"}
            assert guesser.post("/sso/login", data=form).status_code == 403
        # Refused before the token is checked, so the right token is refused too (and not
        # used up: it still opens a session below).
        good = {"resource_id": uuid, "timestamp": now, "resource_token": token}
        _assert_429(guesser.post("/sso/login", data=good))
    with client(server, "127.0.24.1") as browser:
        form = {"resource_id": uuid, "timestamp": now, "resource_token": token}
        reply = browser.post("/sso/login", data=form)
        assert reply.status_code == 302
        assert reply.headers["location"].startswith("/dashboard/caches/")
