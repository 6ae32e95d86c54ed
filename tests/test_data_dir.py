"""Which data dir a command uses, run as an operator runs it from any directory: the running
server's (no `--data-dir` needed), else one line saying what to pass; never a new `./data`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from memcloud import locate
from memcloud.testing import ServerProcess


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCLOUD_")}
    return {**env, **extra}


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memcloud.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _env(),
    )


def _one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("memcloud: error: ") and fragment in line


def test_commands_anywhere_use_the_running_servers_data_dir(
    tmp_path: Path, server_records: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with ServerProcess(tmp_path / "srv" / "data") as server:
        created = run(elsewhere, "cache", "create", "shop", "--json")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["name"] == "shop"
        listed = json.loads(run(elsewhere, "cache", "list", "--json").stdout)
        assert [c["name"] for c in listed] == ["default", "shop"]
        # Through the operator socket too: the running server answers for its cache.
        assert run(elsewhere, "flush", "shop").returncode == 0
        # The server's own view: the same store.
        assert [c["name"] for c in server.cli_json("cache", "list")] == ["default", "shop"]
        assert server.process is not None
        record = server_records / f"{server.process.pid}.json"
        assert record.exists()
    assert list(elsewhere.iterdir()) == []  # no ./data made where the command ran
    assert not record.exists()  # a clean stop removes the server's record


def test_without_a_server_a_command_says_what_to_pass_and_makes_nothing(tmp_path: Path) -> None:
    for args in (("cache", "create", "shop"), ("cache", "list"), ("stats", "default")):
        done = run(tmp_path, *args)
        _one_line_error(done, "no memcloud server is running for this user; pass --data-dir")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_servers_record_does_not_count(tmp_path: Path, server_records: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    assert server.process is not None
    record = server_records / f"{server.process.pid}.json"
    assert json.loads(record.read_text())["data_dir"] == str((tmp_path / "data").resolve())
    # Killed, it cannot remove its record (nor its server.json); the process is gone.
    server.process.send_signal(signal.SIGKILL)
    server.stop()
    assert record.exists() and (tmp_path / "data" / "server.json").exists()
    _one_line_error(run(tmp_path, "cache", "list"), "no memcloud server is running")
    assert not record.exists()  # and the stale record is cleared


def test_with_two_servers_the_command_asks_which(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "a") as first, ServerProcess(tmp_path / "b") as second:
        done = run(tmp_path, "cache", "list")
        _one_line_error(done, "2 memcloud servers are running")
        assert str(first.data_dir) in done.stderr and str(second.data_dir) in done.stderr
        # Either way of naming one works.
        by_flag = run(tmp_path, "cache", "list", "--json", "--data-dir", str(first.data_dir))
        named = _env(MEMCLOUD_DATA_DIR=str(tmp_path / "b"))
        by_env = run(tmp_path, "cache", "list", "--json", env=named)
        assert json.loads(by_flag.stdout)[0]["name"] == "default"
        assert json.loads(by_env.stdout)[0]["name"] == "default"


@pytest.mark.parametrize("variable", ["XDG_RUNTIME_DIR", "HOME"])
def test_records_follow_the_users_directories(tmp_path: Path, variable: str) -> None:
    env = {"XDG_RUNTIME_DIR": "", "XDG_STATE_HOME": "", "HOME": "", variable: str(tmp_path)}
    where = locate.records_dir(env)
    expected = {
        "XDG_RUNTIME_DIR": tmp_path / "memcloud" / "servers",
        "HOME": tmp_path / ".local" / "state" / "memcloud" / "servers",
    }
    assert where == expected[variable]
    assert locate.records_dir({"HOME": "relative"}) is None


def test_only_records_nobody_else_can_write_count(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run")}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A server in this very process: alive, and its server.json names it.
    (data_dir / "server.json").write_text(json.dumps({"pid": os.getpid()}))
    records = locate.records_dir(env)
    assert records is not None
    records.mkdir(parents=True, mode=0o700)
    record = records / "1.json"
    record.write_text(json.dumps({"pid": os.getpid(), "data_dir": str(data_dir)}))
    record.chmod(0o600)
    assert locate.running_data_dirs(env) == [data_dir]
    record.chmod(0o622)  # another account could have written it
    assert locate.running_data_dirs(env) == []
    record.chmod(0o600)
    records.chmod(0o777)  # or planted it
    assert locate.running_data_dirs(env) == []
    records.chmod(0o700)
    assert locate.running_data_dirs(env) == [data_dir]
