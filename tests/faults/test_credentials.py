"""Finding 13: the primary credential cannot be deleted (CLI, v1, v2), and the credential
commands' help says what each capability does by default and what read-only takes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import api_status
from memcloud.testing import ServerProcess, control_database, wait_for

REFUSED = "cannot delete the primary credential; promote another credential first"


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memcloud.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_cli_refuses_to_delete_the_only_primary_credential(tmp_path: Path) -> None:
    data_dir = control_database(tmp_path / "data")
    created = cli(data_dir, "cache", "create", "shop", "--json")
    assert created.returncode == 0, created.stderr
    primary = json.loads(created.stdout)["credentials"][0]["sasl_username"]
    run = cli(data_dir, "credentials", "delete", "shop", primary)
    assert (run.returncode, run.stdout, run.stderr) == (1, "", f"memcloud: error: {REFUSED}\n")
    listed = json.loads(cli(data_dir, "credentials", "list", "shop", "--json").stdout)
    assert [(c["sasl_username"], c["primary"]) for c in listed] == [(primary, True)]
    # Rotation still works: create, promote, then the old one may go.
    new = json.loads(cli(data_dir, "credentials", "create", "shop", "--json").stdout)
    assert cli(data_dir, "credentials", "promote", "shop", new["sasl_username"]).returncode == 0
    assert cli(data_dir, "credentials", "delete", "shop", primary).returncode == 0


@pytest.mark.parametrize("version", ["v1", "v2", "v1-documented"])
def test_api_refuses_to_delete_the_only_primary_credential(tmp_path: Path, version: str) -> None:
    with ServerProcess(tmp_path / "data") as server:
        base = f"http://127.0.0.1:{server.api_port}"
        auth = basic(server.username, server.password)
        path = {
            "v1": f"/api/v1/1/credentials/{server.username}",
            "v1-documented": f"/api/v1/1/credentials/primary/{server.username}",
            "v2": f"/api/v2/caches/1/credentials/{server.username}",
        }[version]
        refused = httpx.delete(base + path, headers=auth, timeout=10)
        # The credential still works, so the cache is still usable.
        after = httpx.get(f"{base}/api/v2/caches/1/credentials", headers=auth, timeout=10)
    body = REFUSED if version.startswith("v1") else {"message": REFUSED}
    assert (refused.status_code, refused.json()) == (400, body)
    assert after.status_code == 200
    assert [(c["sasl_username"], c["primary"]) for c in after.json()] == [(server.username, True)]


def _help(*command: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "memcloud.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return " ".join(run.stdout.split())  # argparse wraps lines by terminal width


def test_credentials_create_help_shows_each_default_and_what_read_only_takes() -> None:
    text = _help("credentials", "create")
    assert "--write, --no-write store, change and delete items (default: may write)" in text
    assert "(flush_all, the API's flush) (default: may flush)" in text
    assert "(API and dashboard) (default: may use the API)" in text
    assert "A read-only credential is --no-write --no-flush --no-api." in text


def test_credentials_update_help_says_unchanged_by_default() -> None:
    text = _help("credentials", "update")
    assert text.count("(default: unchanged)") == 3
    assert "--write, --no-write grant or revoke: store, change and delete items" in text


def test_read_only_credential_cannot_write_flush_or_use_the_api(tmp_path: Path) -> None:
    """What the README's read-only example creates: it reads, and does nothing else."""
    with ServerProcess(tmp_path / "data") as server:
        made = server.cli_json("credentials", "create", "1", "--no-write", "--no-flush", "--no-api")
        user, password = made["sasl_username"], made["sasl_password"]
        assert (made["write_capability"], made["flush_capability"], made["api_capability"]) == (
            False,
            False,
            False,
        )
        base = f"http://127.0.0.1:{server.api_port}"
        auth = basic(user, password)
        # A new credential reaches the running server within its poll interval.
        assert wait_for(
            lambda: api_status(server.api_port or 0, user, password, "/api/v2/caches/1/info") != 401
        )
        flush = httpx.post(f"{base}/api/v1/1/flush", headers=auth, timeout=10)
        info = httpx.get(f"{base}/api/v2/caches/1/info", headers=auth, timeout=10)
    assert (flush.status_code, flush.json()) == (
        403,
        "You are not authorized to perform this action.",
    )
    assert (info.status_code, info.json()) == (
        403,
        {"message": "Forbidden to access cache with this ID."},
    )
