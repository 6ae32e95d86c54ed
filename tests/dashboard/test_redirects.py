"""Where signing in with a cache credential sends the browser, over HTTP to a real server."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from memcloud.testing import ServerProcess


def _sign_in(http: httpx.Client, base: str, username: str, password: str, target: str) -> str:
    """Sign in from the login form asked for `target`; the redirect's Location."""
    form = http.get(f"{base}/dashboard/login", params={"next": target})
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    # The form carries `next` on (the real path a browser takes).
    assert f'name="next" value="{target}"' in form.text
    reply = http.post(
        f"{base}/dashboard/login",
        data={"csrf": csrf[1], "next": target, "username": username, "password": password},
    )
    assert reply.status_code == 303, reply.text
    return reply.headers["location"]


def test_sign_in_goes_only_to_pages_of_the_signed_in_cache(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        base = f"http://127.0.0.1:{server.api_port}"
        login = httpx.get(f"{base}/api/v1/login", auth=(server.username, server.password))
        cache_id = login.json()["cache_id"]
        home = f"/dashboard/caches/{cache_id}"
        with httpx.Client(follow_redirects=False) as http:
            # Cache 1's credential must not open cache 12's pages (nor any other id that
            # merely starts with the same digits).
            location = _sign_in(http, base, server.username, server.password, f"{home}2")
            assert not location.endswith(f"{home}2")
            assert location.endswith(home)
            # Its own pages are still where it goes when asked.
            settings = f"{home}/settings"
            assert _sign_in(http, base, server.username, server.password, settings).endswith(
                settings
            )
            assert _sign_in(http, base, server.username, server.password, home).endswith(home)
