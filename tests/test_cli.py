"""The `memcloud` command, run as a real subprocess against a temporary data directory."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymemcache.client.base import Client as PymemcacheClient

from memcloud.cli import main
from memcloud.testing import ServerProcess, control_database

MB = 1024 * 1024


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose control database a (stopped) `memcloud serve` made."""
    return control_database(tmp_path / "data")


def memcloud(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None) -> Run:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    full_env.update(env or {})
    argv = [sys.executable, "-m", "memcloud.cli", *args]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=60)
    return Run(proc)


def assert_one_line_error(run: Run, code: int, fragment: str) -> None:
    assert run.code == code, (run.out, run.err)
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("memcloud: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in run.err


def test_cache_create_prints_cache_and_primary_credential(data_dir: Path) -> None:
    cache = memcloud("cache", "create", "demo", "--plan", "50MB", "--json", data_dir=data_dir)
    data = cache.json()
    assert {k: data[k] for k in ("id", "name", "plan", "enabled")} == {
        "id": 1,
        "name": "demo",
        "plan": 50 * MB,
        "enabled": True,
    }
    [cred] = data["credentials"]
    assert cred["cache_id"] == 1 and cred["primary"] is True
    assert cred["write_capability"] and cred["flush_capability"] and cred["api_capability"]
    assert len(cred["sasl_username"]) == 6 and len(cred["sasl_password"]) == 32
    # The password is never shown again, and never stored in plaintext.
    listed = memcloud("cache", "list", "--json", data_dir=data_dir).json()
    assert "sasl_password" not in listed[0]["credentials"][0]
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    assert cred["sasl_password"].encode() not in raw
    assert cred["sasl_username"].encode() in raw


def test_human_output(data_dir: Path) -> None:
    created = memcloud("cache", "create", "demo", data_dir=data_dir)
    assert created.code == 0, created.err
    assert "plan 25MB" in created.out and "MEMCACHIER_PASSWORD=" in created.out
    listed = memcloud("cache", "list", data_dir=data_dir)
    header, row = listed.out.splitlines()
    assert header.split() == ["id", "name", "plan", "enabled", "credentials"]
    assert row.split() == ["1", "demo", "25MB", "yes", "1"]


def test_cache_resize_and_delete_by_name_or_id(data_dir: Path) -> None:
    memcloud("cache", "create", "demo", "--json", data_dir=data_dir).json()
    resized = memcloud("cache", "resize", "demo", "--plan", "100MB", "--json", data_dir=data_dir)
    assert resized.json()["plan"] == 100 * MB
    assert memcloud("cache", "delete", "1", "--json", data_dir=data_dir).json()["name"] == "demo"
    assert memcloud("cache", "list", "--json", data_dir=data_dir).json() == []


def test_credentials_lifecycle(data_dir: Path) -> None:
    created = memcloud("cache", "create", "demo", "--json", data_dir=data_dir).json()
    primary = created["credentials"][0]["sasl_username"]
    new = memcloud(
        "credentials", "create", "demo", "--no-flush", "--no-api", "--json", data_dir=data_dir
    ).json()
    assert new["primary"] is False and len(new["sasl_password"]) == 32
    assert (new["write_capability"], new["flush_capability"], new["api_capability"]) == (
        True,
        False,
        False,
    )
    user = new["sasl_username"]

    updated = memcloud(
        "credentials", "update", "demo", user, "--api", "--no-write", "--json", data_dir=data_dir
    ).json()
    assert (updated["write_capability"], updated["flush_capability"]) == (False, False)
    assert updated["api_capability"] is True

    refused = memcloud("credentials", "delete", "demo", primary, data_dir=data_dir)
    assert_one_line_error(refused, 1, "promote another credential first")

    promoted = memcloud("credentials", "promote", "demo", user, "--json", data_dir=data_dir)
    assert promoted.json()["primary"] is True
    deleted = memcloud("credentials", "delete", "1", primary, "--json", data_dir=data_dir)
    assert deleted.json()["sasl_username"] == primary

    listed = memcloud("credentials", "list", "demo", "--json", data_dir=data_dir).json()
    assert [c["sasl_username"] for c in listed] == [user]
    assert listed[0]["primary"] is True and "sasl_password" not in listed[0]


def test_credentials_update_needs_a_flag(data_dir: Path) -> None:
    created = memcloud("cache", "create", "demo", "--json", data_dir=data_dir).json()
    user = created["credentials"][0]["sasl_username"]
    run = memcloud("credentials", "update", "demo", user, data_dir=data_dir)
    assert_one_line_error(run, 2, "nothing to change")


def test_env_data_dir_and_flag_precedence(tmp_path: Path) -> None:
    env_dir, flag_dir = control_database(tmp_path / "env"), control_database(tmp_path / "flag")
    env = {"MEMCLOUD_DATA_DIR": str(env_dir)}
    assert memcloud("cache", "create", "from-env", "--json", env=env).code == 0
    assert (env_dir / "memcloud.db").exists()
    created = memcloud("cache", "create", "from-flag", "--json", data_dir=flag_dir, env=env)
    assert created.code == 0
    names = [c["name"] for c in memcloud("cache", "list", "--json", env=env).json()]
    assert names == ["from-env"]
    # Boolean options and sizes come from the environment too.
    env_json = {**env, "MEMCLOUD_JSON": "1", "MEMCLOUD_PLAN": "2MB"}
    data = memcloud("cache", "create", "sized", env=env_json).json()
    assert data["plan"] == 2 * MB
    flag_wins = memcloud("cache", "create", "sized2", "--plan", "3MB", env=env_json).json()
    assert flag_wins["plan"] == 3 * MB


def test_bad_env_value_is_a_usage_error(data_dir: Path) -> None:
    run = memcloud("cache", "create", "x", data_dir=data_dir, env={"MEMCLOUD_PLAN": "lots"})
    assert_one_line_error(run, 2, "MEMCLOUD_PLAN")
    # An env variable for another command's option does not break this one.
    ok = memcloud("cache", "create", "x", data_dir=data_dir, env={"MEMCLOUD_PORT": "nope"})
    assert ok.code == 0, ok.err


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("cache", "create", "demo", "--plan", "huge"), 2, "not a size"),
        (("cache", "create", "demo", "--plan", "0"), 2, "greater than zero"),
        (("cache", "create", "bad name"), 1, "invalid cache name"),
        (("cache", "delete", "nope"), 1, "no cache named 'nope'"),
        (("cache", "delete", "99"), 1, "no cache with id 99"),
        (("credentials", "promote", "demo", "ZZZZZZ"), 1, "no credential"),
        (("cache", "frobnicate"), 2, "invalid choice"),
        (("cache", "resize", "demo"), 2, "--plan"),
    ],
)
def test_errors_are_one_line(
    data_dir: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    assert memcloud("cache", "create", "demo", data_dir=data_dir).code == 0
    assert_one_line_error(memcloud(*args, data_dir=data_dir), code, fragment)


def test_duplicate_cache_is_an_error(data_dir: Path) -> None:
    assert memcloud("cache", "create", "demo", data_dir=data_dir).code == 0
    run = memcloud("cache", "create", "demo", data_dir=data_dir)
    assert_one_line_error(run, 1, "already exists")


def test_commands_other_than_create_do_not_make_a_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert_one_line_error(memcloud("cache", "list", data_dir=data_dir), 1, "no memcloud data")
    assert not data_dir.exists()
    # Nor does `cache create`: only `memcloud serve` makes a control database.
    run = memcloud("cache", "create", "demo", data_dir=data_dir)
    assert_one_line_error(run, 1, f"no memcloud data in {data_dir}: `memcloud serve")
    assert not data_dir.exists()


def test_flush_and_stats_without_a_server(data_dir: Path) -> None:
    assert memcloud("cache", "create", "demo", data_dir=data_dir).code == 0
    for command in ("flush", "stats"):
        run = memcloud(command, "demo", data_dir=data_dir)
        assert_one_line_error(run, 1, "no running memcloud server")
    assert_one_line_error(memcloud("flush", "nope", data_dir=data_dir), 1, "no cache named")


def test_in_process_main_returns_codes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    environ: dict[str, str] = {}
    assert main(["cache", "create", "demo", "--data-dir", str(data_dir)], environ) == 0
    assert main(["cache", "delete", "zzz", "--data-dir", str(data_dir)], environ) == 1
    assert capsys.readouterr().err == "memcloud: error: no cache named 'zzz'\n"


def _settings_stats(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats settings\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    lines = reply.decode().split("\r\n")
    return {line.split()[1]: line.split()[2] for line in lines if line.startswith("STAT ")}


def test_serve_reads_its_flags_first_then_the_environment(tmp_path: Path) -> None:
    env = {
        "MEMCLOUD_ANONYMOUS_CACHE": "anon",
        "MEMCLOUD_ITEM_SIZE_MAX": "5MB",  # the flag below wins
        "MEMCLOUD_ADMIN_TOKEN": "token-from-env",
        "MEMCLOUD_NODES": "2",
    }
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir, "--item-size-max", "2MB", env=env, nodes=None) as server:
        assert _settings_stats(server.port)["item_size_max"] == str(2 * MB)
        assert len(server.servers) == 2
        client = PymemcacheClient(("127.0.0.1", server.port))  # anonymous: no login
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
        # The given admin token is the operator's: none is generated, printed or kept.
        assert not (data_dir / "admin-token").exists()
        base = f"http://127.0.0.1:{server.api_port}/dashboard/admin/login"
        with httpx.Client(follow_redirects=False) as http:
            form = http.get(base).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            wrong = http.post(base, data={"csrf": csrf[1], "token": "guess"})
            assert wrong.status_code == 401
            right = http.post(base, data={"csrf": csrf[1], "token": "token-from-env"})
            assert right.status_code == 303, right.text
            assert right.headers["location"].endswith("/dashboard/admin")
    assert "MEMCACHIER_SERVERS=" in server.stdout
    assert "MEMCLOUD_ADMIN_TOKEN" not in server.stdout


def test_serve_runs_one_node_per_core_by_default(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", nodes=None) as server:
        assert len(server.servers) == (os.cpu_count() or 1)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_child_nodes_get_node_0s_settings_in_their_environment_not_their_arguments(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {"MEMCLOUD_ITEM_SIZE_MAX": "5MB"}  # the flag below wins, on every node
    args = ("--item-size-max", "2MB", "--nodes", "2", "--anonymous-cache", "anon")
    with ServerProcess(data_dir, *args, env=env) as server:
        assert server.process is not None
        [child] = _children(server.process.pid)
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:-1]
        environ = dict(
            item.split(b"=", 1)
            for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if b"=" in item
        )
        node_port = int(server.servers[1].rpartition(":")[2])
        node_stats = _settings_stats(node_port)
    assert argv == [sys.executable.encode(), b"-m", b"memcloud.cli", b"serve"]
    node = json.loads(environ[b"MEMCLOUD_NODE_SETTINGS"])
    # The tokens node 0 generated, its bound ports, and its flags over its environment.
    admin_token = (data_dir / "admin-token").read_text().strip()
    assert (node["node_index"], node["port"], node["admin_token"]) == (1, node_port, admin_token)
    assert node["item_size_max"] == 2 * MB
    assert node_stats["item_size_max"] == str(2 * MB)
