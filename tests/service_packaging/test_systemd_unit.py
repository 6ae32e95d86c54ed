"""packaging/memcloud.service: `systemd-analyze verify` accepts it without a word (a rendered
copy whose ExecStart is this checkout's real `memcloud`, since verify checks the binary),
refuses a broken copy, and rates its sandbox; its example environment file names only real
`memcloud serve` variables."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool
from memcloud.cli import build_parser
from memcloud.cli.serve import settings_from
from memcloud.config import Settings, settings_options

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "memcloud.service"
ENV_FILE = ROOT / "packaging" / "memcloud.env"
INSTALLED = "/opt/memcloud/venv/bin/memcloud"


def render(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart on this venv's memcloud (it exists here) and the example
    environment file, as a file systemd-analyze can read."""
    text = UNIT.read_text() if text is None else text
    memcloud = Path(sys.executable).parent / "memcloud"
    assert memcloud.exists()
    text = text.replace(INSTALLED, str(memcloud))
    text = text.replace("/etc/memcloud/memcloud.env", str(ENV_FILE))
    path = tmp_path / "memcloud.service"
    path.write_text(text)
    return path


def verify(unit: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify's exit status and every line it said (it only warns, with
    status 0, about unknown keys and unparsable values: each line is a problem)."""
    done = subprocess.run(
        [require_tool("systemd-analyze"), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return done.returncode, lines


def unit_values() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def test_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    status, said = verify(render(tmp_path))
    assert (status, said) == (0, [])


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (("ProtectSystem=strict", "ProtectSystm=strict"), "Unknown key"),
        (("Restart=on-failure", "Restart=sometimes"), "restart"),
        (("RestrictAddressFamilies=AF_INET", "RestrictAddressFamilies=AF_INETT"), "AF_INETT"),
    ],
)
def test_verify_finds_a_broken_copy(tmp_path: Path, broken: tuple[str, str], expected: str) -> None:
    text = UNIT.read_text()
    assert broken[0] in text
    _, said = verify(render(tmp_path, text.replace(broken[0], broken[1])))
    assert said and expected.lower() in " ".join(said).lower()


def test_verify_fails_when_the_binary_is_missing(tmp_path: Path) -> None:
    unit = render(tmp_path, UNIT.read_text().replace(INSTALLED, str(tmp_path / "no-memcloud")))
    status, said = verify(unit)
    assert status != 0 and "not executable" in " ".join(said)


def test_the_unit_is_hardened_and_serves_from_its_state_directory() -> None:
    service = unit_values()
    assert service["ExecStart"] == f"{INSTALLED} serve --data-dir /var/lib/memcloud"
    assert service["StateDirectory"] == "memcloud"
    assert service["EnvironmentFile"] == "/etc/memcloud/memcloud.env"
    assert service["User"] == "memcloud"
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "Restart": "on-failure",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key) for key in expected} == expected
    # The open-file limit holds a node's memcache connections and the API's, with room.
    defaults = Settings()
    assert int(service["LimitNOFILE"]) >= (
        defaults.max_connections + defaults.api_max_connections + 100
    )


def test_systemd_analyze_security_rates_the_sandbox_ok(tmp_path: Path) -> None:
    done = subprocess.run(
        [require_tool("systemd-analyze"), "security", "--offline=yes", str(render(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for memcloud\.service: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    # 0 is fully sandboxed, 10 not at all; systemd calls up to 3.9 "OK" (1.7 when written).
    assert float(found.group(1)) <= 2.0


def test_the_example_environment_file_names_real_options() -> None:
    known = {f"MEMCLOUD_{f.name.upper()}" for f, _ in settings_options()}
    named = re.findall(r"^#?(MEMCLOUD_[A-Z_]+)=", ENV_FILE.read_text(), flags=re.MULTILINE)
    assert named and set(named) <= known, set(named) - known
    # What is set (not commented) is taken by `memcloud serve`'s own parser.
    active = dict(
        line.split("=", 1)
        for line in ENV_FILE.read_text().splitlines()
        if line.startswith("MEMCLOUD_")
    )
    ns = build_parser().parse_args(["serve"])
    ns.leaf.resolve(ns, active)
    settings = settings_from(ns)
    assert (settings.host, settings.memory, settings.log_format) == ("0.0.0.0", 1 << 30, "json")
