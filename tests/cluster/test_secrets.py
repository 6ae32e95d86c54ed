"""The cluster secret: given, read from a file, generated once on one machine, refused when
weak or missing across machines; never in a repr."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from memcloud.cli import build_parser, main
from memcloud.cli.serve import settings_from
from memcloud.cluster.identity import NodeIdentity
from memcloud.cluster.secrets import (
    SECRET_FILENAME,
    ClusterSecretError,
    ClusterSecrets,
    check_secret,
    cluster_secrets,
    generate_secret,
)
from memcloud.config import Settings

STRONG = "9f1c2e7a4b8d3f60a1e5c9b2d7f4086e3a5c1b9d2e8f7a6b4c3d2e1f0a9b8c7d"
OTHER = "N3vQx8Lr2Kp5Zt7Wm9Yb4Hc6Jd1Fg0Se-Ua_Ob3Ic5Ed"
POSTGRES = "postgresql://memcloud@db.example.com/memcloud"


def test_a_generated_secret_is_kept_0600_in_the_data_dir_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = cluster_secrets(Settings(), data)
    path = data / SECRET_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == first.current
    check_secret(first.current, "generated")
    assert cluster_secrets(Settings(), data) == first
    assert [p.name for p in data.iterdir()] == [SECRET_FILENAME]  # no temporary left behind
    # Another data dir (another machine) makes another secret.
    assert cluster_secrets(Settings(), tmp_path / "other").current != first.current


def test_a_given_secret_or_file_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    assert cluster_secrets(Settings(cluster_secret=STRONG), tmp_path).current == STRONG.encode()
    secret_file = tmp_path / "secret"
    secret_file.write_text(OTHER + "\n")
    given = Settings(cluster_secret=f"@{secret_file}", cluster_secret_previous=(STRONG, OTHER))
    secrets = cluster_secrets(given, tmp_path)
    # The file's newline is no part of it; the current secret is not also "previous".
    assert secrets == ClusterSecrets(OTHER.encode(), (STRONG.encode(),))
    assert not (tmp_path / SECRET_FILENAME).exists()


def serve_settings(args: list[str], environ: dict[str, str]) -> Settings:
    """The Settings `memcloud serve ARGS` would run with (parsed and resolved as main does)."""
    ns = build_parser().parse_args(["serve", *args])
    ns.leaf.resolve(ns, environ)
    return settings_from(ns)


def test_previous_secrets_come_from_the_flag_or_the_variable_comma_separated() -> None:
    given = serve_settings(
        ["--cluster-secret-previous", f"{STRONG}, {OTHER}"],
        {"MEMCLOUD_CLUSTER_SECRET": STRONG},
    )
    assert given.cluster_secret == STRONG
    assert given.cluster_secret_previous == (STRONG, OTHER)
    env = serve_settings([], {"MEMCLOUD_CLUSTER_SECRET_PREVIOUS": OTHER})
    assert env.cluster_secret_previous == (OTHER,)
    assert serve_settings([], {}).cluster_secret_previous == ()


@pytest.mark.parametrize(
    "weak",
    [
        "too-short-secret",
        "0123456789abcdef" * 3,  # 48 hex digits: 192 bits
        "a" * 200,  # long, but one character
        "abababababababababababababababababababababababababababababababab" * 2,
    ],
)
def test_a_weak_secret_is_refused_in_one_line_that_does_not_repeat_it(
    tmp_path: Path, weak: str
) -> None:
    with pytest.raises(ClusterSecretError) as refused:
        cluster_secrets(Settings(cluster_secret=weak), tmp_path)
    message = str(refused.value)
    assert "\n" not in message and "256 bits" in message and "--cluster-secret" in message
    assert weak not in message
    with pytest.raises(ClusterSecretError, match="cluster-secret-previous"):
        cluster_secrets(Settings(cluster_secret=STRONG, cluster_secret_previous=(weak,)), tmp_path)


def test_typical_generators_pass() -> None:
    for text in (generate_secret(), STRONG, OTHER, "kX9+2mQ/7vB1nR4tY8wE3uI6oP0aS5dF7gH2jK4lZ8c="):
        check_secret(text.encode(), "a secret")
    check_secret(os.urandom(32), "raw bytes from a file")


def test_without_a_secret_a_deployment_over_machines_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ClusterSecretError) as refused:
        cluster_secrets(Settings(control_url=POSTGRES), tmp_path)
    message = str(refused.value)
    assert "MEMCLOUD_CLUSTER_SECRET" in message and "every machine" in message
    assert "\n" not in message
    assert not (tmp_path / SECRET_FILENAME).exists()
    # Given, it is used as on one machine.
    assert cluster_secrets(Settings(control_url=POSTGRES, cluster_secret=STRONG), tmp_path)


def test_an_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ClusterSecretError, match=f"file {missing}: No such file"):
        cluster_secrets(Settings(cluster_secret=f"@{missing}"), tmp_path)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(10_000))
    with pytest.raises(ClusterSecretError, match="larger than"):
        cluster_secrets(Settings(cluster_secret=f"@{big}"), tmp_path)


def test_no_repr_shows_a_secret() -> None:
    secrets = ClusterSecrets(STRONG.encode(), (OTHER.encode(),))
    settings = Settings(cluster_secret=STRONG, cluster_secret_previous=(OTHER,))
    identity = NodeIdentity(secrets)
    for text in (repr(secrets), str(secrets), repr(settings), repr(identity), repr(identity.ca)):
        assert STRONG not in text and OTHER not in text
    assert "cluster_secret=<secret>" in repr(settings)
    assert "cluster_secret_previous=<secret>" in repr(settings)


def test_the_cli_prints_a_fresh_secret_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster-secret"]) == 0
    first = capsys.readouterr().out
    assert main(["cluster-secret"]) == 0
    second = capsys.readouterr().out
    assert first.endswith("\n") and first.count("\n") == 1 and first != second
    check_secret(first.strip().encode(), "printed")
