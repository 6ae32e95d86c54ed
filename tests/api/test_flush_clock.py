"""Flushes are stamped by the injected clock, whatever door they come through, and the
deployment's doors answer only once the flush log holds them (no polling after them)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx

from memcloud.clock import FakeClock
from memcloud.config import Settings
from memcloud.testing import InProcessServer, ascii_login, wait_for

# Three days ago and a quarter second: no wall clock reads this while the test runs.
FAKE_START = float(int(time.time()) - 3 * 86400) + 0.25


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def test_flush_events_carry_the_injected_clocks_time(tmp_path: Path) -> None:
    clock = FakeClock(FAKE_START)
    with InProcessServer(Settings(data_dir=tmp_path / "data"), clock) as srv:
        assert srv.runtime is not None and srv.runtime.api_port
        base = f"http://127.0.0.1:{srv.runtime.api_port}"
        http = httpx.Client(base_url=base, auth=(srv.username, srv.password), timeout=10)
        cache_id = http.get("/api/v1/login").json()["cache_id"]
        log_path = f"/api/v2/caches/{cache_id}/flush_log"

        def newest() -> tuple[str, float]:
            entry = http.get(log_path).json()[0]
            return entry["source"], entry["timestamp"]

        # The API: listed as soon as the flush answered, at the fake time.
        assert http.post(f"/api/v1/{cache_id}/flush").status_code == 200
        assert newest() == ("api", FAKE_START)

        # The dashboard: the page it redirects to lists the flush at once.
        srv.clock.advance(10)
        browser = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
        signed_in = browser.post(
            "/dashboard/login",
            data={
                "csrf": _csrf(browser.get("/dashboard/login").text),
                "username": srv.username,
                "password": srv.password,
            },
        )
        assert signed_in.status_code == 303
        page = f"/dashboard/caches/{cache_id}/flush"
        done = browser.post(page, data={"csrf": _csrf(browser.get(page).text), "confirm": "yes"})
        assert done.status_code == 303 and done.headers["location"].endswith("notice=flushed")
        # The page it redirects to, read at once, lists it first (the API flush second).
        listed = browser.get(done.headers["location"])
        assert listed.status_code == 200
        rows = re.findall(r"<tr><td>[^<]*</td><td>([a-z_]+)</td>", listed.text)
        assert rows == ["dashboard", "api"]
        assert newest() == ("dashboard", FAKE_START + 10)
        browser.close()

        # The text protocol hands its event to the writer without waiting; same clock.
        srv.clock.advance(10)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(ascii_login(srv.username, srv.password) + b"flush_all\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(4096)
                assert chunk
                reply += chunk
        assert reply == b"STORED\r\nOK\r\n"
        assert wait_for(lambda: newest() == ("text", FAKE_START + 20))
        http.close()
