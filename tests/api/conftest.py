"""A real `memcloud serve` per test module, and a small HTTP helper bound to its API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymemcache.client.base import Client

from memcloud.testing import ServerProcess, wait_for

# Fast stats sampling, so history tests do not wait a minute; a login allowance that the
# many wrong-password cases of one module, all from 127.0.0.1, stay within (the throttle
# itself is tested in test_login_throttle.py).
SAMPLE_ENV = {"MEMCLOUD_STATS_SAMPLE_SECONDS": "0.2", "MEMCLOUD_LOGIN_FREE_FAILURES": "1000"}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Cred:
    username: str
    password: str
    cache_id: int

    @property
    def headers(self) -> dict[str, str]:
        return basic(self.username, self.password)


class Api:
    def __init__(self, proc: ServerProcess) -> None:
        assert proc.api_port
        self.proc = proc
        self.base = f"http://127.0.0.1:{proc.api_port}"
        self.http = httpx.Client(base_url=self.base, timeout=10)
        login = self.http.get("/api/v1/login", auth=(proc.username, proc.password))
        self.main = Cred(proc.username, proc.password, login.json()["cache_id"])

    def request(
        self, method: str, path: str, cred: Cred | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if cred is not None:
            headers.update(cred.headers)
        return self.http.request(method, path, headers=headers, **kwargs)

    def memcache(self, cred: Cred | None = None) -> Client:
        """An authenticated text-protocol client of a credential's cache."""
        cred = cred or self.main
        client = Client(("127.0.0.1", self.proc.port), timeout=5)
        assert client.set(cred.username, cred.password, noreply=False)
        return client

    def new_credential(self, cache: str = "default", *flags: str) -> Cred:
        """A credential made with the CLI (it reaches the server within a second)."""
        data = self.proc.cli_json("credentials", "create", cache, *flags)
        cred = Cred(data["sasl_username"], data["sasl_password"], data["cache_id"])
        assert wait_for(lambda: self.knows(cred), timeout=5)
        return cred

    def new_cache(self, name: str) -> Cred:
        data = self.proc.cli_json("cache", "create", name)
        first = data["credentials"][0]
        cred = Cred(first["sasl_username"], first["sasl_password"], data["id"])
        assert wait_for(lambda: self.knows(cred), timeout=5)
        return cred

    def knows(self, cred: Cred) -> bool:
        """True once the server accepts the credential (api capability or not)."""
        reply = self.request("GET", "/api/v2/caches/0/stats", cred)
        return reply.status_code != 401

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def api_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("api") / "data", env=SAMPLE_ENV) as proc:
        yield proc


@pytest.fixture(scope="module")
def api(api_proc: ServerProcess) -> Iterator[Api]:
    client = Api(api_proc)
    yield client
    client.close()
