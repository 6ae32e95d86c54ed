"""One source of settings: the `serve` flags come from Settings' field metadata, the README
documents exactly those, a child node's settings survive JSON, and secrets stay out of repr."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from pathlib import Path

import pytest

from memcloud.cli import build_parser, main
from memcloud.cli.env import Parser, env_name
from memcloud.cli.serve import NODE_SETTINGS, flag_name, settings_from
from memcloud.config import NODE_SETTINGS_ENV, Settings, settings_options
from memcloud.server.supervisor import NodeProcess

README = Path(__file__).resolve().parent.parent / "README.md"
MB = 1024 * 1024


def _serve_parser() -> Parser:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    serve = commands.choices["serve"]
    assert isinstance(serve, Parser)
    return serve


def _visible_options(parser: Parser) -> dict[str, argparse.Action]:
    return {
        action.option_strings[0]: action
        for action in parser._actions
        if action.option_strings and action.dest != "help" and action.help != argparse.SUPPRESS
    }


def _readme_serve_table() -> dict[str, tuple[str, str]]:
    """flag -> (environment, default) of README's `memcloud serve` options table."""
    text = README.read_text()
    section = text.split("### `memcloud serve` options", 1)[1]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `--"):
            if rows:
                break  # the end of the table
            continue
        flag, env, default, _meaning = (cell.strip() for cell in line.strip("|").split("|"))
        rows[flag.strip("`")] = (env.strip("`"), default)
    return rows


def _serve(args: list[str], environ: dict[str, str] | None = None) -> Settings:
    """The Settings `memcloud serve ARGS` would run with (parsed and resolved as main does)."""
    ns = build_parser().parse_args(["serve", *args])
    ns.leaf.resolve(ns, environ or {})
    return settings_from(ns)


def test_readme_lists_exactly_the_serve_flags_with_their_env_names_and_defaults() -> None:
    serve = _serve_parser()
    words = {f.name: option.words for f, option in settings_options()}
    expected = {}
    for flag, action in _visible_options(serve).items():
        default = serve.real_defaults[action.dest]
        shown = words.get(action.dest) or (f"`{default}`" if default not in (None, False) else "")
        expected[flag] = (env_name(action.dest), shown)
    assert _readme_serve_table() == expected


def test_every_option_field_is_a_flag_and_every_flag_a_field() -> None:
    fields = {flag_name(f.name) for f, option in settings_options() if not option.hidden}
    assert set(_visible_options(_serve_parser())) == fields
    # The one flag that is no Settings field carries a child node's settings.
    assert env_name(NODE_SETTINGS) == NODE_SETTINGS_ENV


def test_flags_and_environment_make_the_settings() -> None:
    assert _serve([]) == Settings(nodes=os.cpu_count() or 1)
    given = _serve(
        ["--memory", "2GB", "--plans", "dev=1MB:connections=7,big=2MB", "--tls-only"],
        {"MEMCLOUD_MEMORY": "1MB", "MEMCLOUD_NODES": "3", "MEMCLOUD_TLS_CERT": "c.pem"},
    )
    assert (given.memory, given.nodes, given.tls_cert, given.tls_only) == (
        2048 * MB,
        3,
        Path("c.pem"),
        True,
    )
    # One flag, two fields: the plans, and the connection limits some of them name.
    assert given.plans == (("dev", MB), ("big", 2 * MB))
    assert given.plan_connections == ((MB, 7),)
    # An option that is on by default is turned off by its --no- flag or its variable.
    assert _serve([]).warm_restart
    assert not _serve(["--no-warm-restart"]).warm_restart
    assert not _serve([], {"MEMCLOUD_WARM_RESTART": "off"}).warm_restart
    assert _serve(["--warm-restart"], {"MEMCLOUD_WARM_RESTART": "off"}).warm_restart


def _unlike_the_defaults() -> Settings:
    """Settings in which every field differs from its default."""
    settings = Settings(
        host="0.0.0.0",
        port=40001,
        api_port=40002,
        data_dir=Path("/srv/memcloud data"),
        memory=0,
        anonymous_cache="anon",
        log_level="DEBUG",
        log_format="json",
        auth_timeout=2.5,
        item_size_max=2 * MB,
        default_plan=50 * MB,
        max_connections=77,
        api_max_connections=9,
        api_head_timeout=1.5,
        api_body_timeout=3.0,
        login_free_failures=3,
        public_host="cache.example.com",
        metrics_token="",
        admin_token="admin-secret",
        provision_user="heroku",
        provision_password="provision-secret",
        sso_salt="sso-secret",
        plans=(("a", MB), ("b", 3 * MB)),
        plan_connections=((MB, 7),),
        plan_replicas=((3 * MB, 2),),
        nodes=3,
        tls_cert=Path("cert.pem"),
        tls_key=Path("key.pem"),
        tls_port=40003,
        tls_only=True,
        tls_client_ca=Path("ca.pem"),
        node_index=2,
        control_url="postgresql://memcloud:db-secret@db.example.com:5433/memcloud",
        cluster="eu-1",
        machine="rack7",
        internal_port=40004,
        advertise="cache1.example.com:21211",
        smtp_url="smtp://mailer:smtp-secret@mail.example.com:587",
        smtp_from="alerts@example.com",
        alert_private_targets=True,
        prefix_delimiter="/",
        introspection=False,
        cluster_secret="cluster-secret-value",
        cluster_secret_previous=("@/etc/memcloud/old-secret", "previous-secret-value"),
        warm_restart=False,
    )
    default = Settings()
    same = [
        f.name
        for f in dataclasses.fields(Settings)
        if getattr(settings, f.name) == getattr(default, f.name)
    ]
    assert same == [], "give these fields a value other than their default"
    return settings


def test_settings_survive_json_with_paths_tuples_and_none() -> None:
    settings = _unlike_the_defaults()
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings.from_json(Settings().to_json()) == Settings()
    back = Settings.from_json(Settings(tls_cert=None, plans=()).to_json())
    assert back.tls_cert is None and back.plans == () and isinstance(back.data_dir, Path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"ports": 1}', "unknown settings: ports"),
        ('{"port": "11211"}', "port: expected int, got '11211'"),
        ('{"tls_only": 1}', "tls_only: expected bool, got 1"),
        ('{"nodes": true}', "nodes: expected int, got True"),
        ('{"data_dir": 5}', "data_dir: expected a path, got 5"),
        ('{"plans": [["dev"]]}', "plans: expected 2 items, got ['dev']"),
        ("[]", "must be an object"),
        ("{", "Expecting"),
    ],
)
def test_settings_json_that_is_not_settings_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Settings.from_json(text)


def test_repr_never_shows_a_secret() -> None:
    settings = _unlike_the_defaults()
    text = repr(settings)
    for secret in ("admin-secret", "provision-secret", "sso-secret", "db-secret", "smtp-secret"):
        assert secret not in text
    assert "cluster-secret-value" not in text and "previous-secret-value" not in text
    assert "admin_token=<secret>" in text and "sso_salt=<secret>" in text
    assert "smtp_url=<secret>" in text
    # What is not secret still shows: a key's path, the add-on user, an open /metrics ('').
    assert "tls_key=PosixPath('key.pem')" in text and "provision_user='heroku'" in text
    assert "metrics_token=''" in text
    assert "admin_token=None" in repr(Settings())
    assert str(Settings(metrics_token="m-secret")).count("m-secret") == 0


def test_a_child_node_gets_node_0s_resolved_settings_through_its_environment() -> None:
    # As the runner hands them to the supervisor: bound ports, generated tokens.
    parent = dataclasses.replace(
        _unlike_the_defaults(), node_index=0, port=40010, tls_port=40020, nodes=3
    )
    child = NodeProcess(parent, 2)
    node = _serve([], {NODE_SETTINGS_ENV: child.node_settings().to_json()})
    assert node == dataclasses.replace(parent, node_index=2, port=40012, tls_port=40022)


def test_a_bad_node_settings_variable_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"], {NODE_SETTINGS_ENV: '{"port": "x"}'}) == 2
    err = capsys.readouterr().err
    assert err == f"memcloud: error: {NODE_SETTINGS_ENV}: port: expected int, got 'x'\n"
