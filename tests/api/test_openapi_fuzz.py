"""Schemathesis against /openapi.json of a real server: no generated request gets a 500,
and every answer is one the document declares (status, content type, body schema).

Each generated case is sent twice: as generated (random ids, mostly refused) and aimed at
the real cache with a valid credential, so the handlers' own parsing is exercised too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from memcloud.testing import ServerProcess

from .conftest import basic

MAX_EXAMPLES = 25
BUDGET_SECONDS = 60.0
OWN_PREFIXES = ("/api/", "/metrics")
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(Path(tmp_path_factory.mktemp("fuzz")) / "data") as proc:
        yield proc


def test_openapi_document_lists_every_route(fuzzed: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{fuzzed.api_port}/openapi.json")
    paths = set(schema.raw_schema["paths"])
    for path in (
        "/api/v1/login",
        "/api/login",
        "/api/v1/{cache_id}/stats",
        "/api/v1/{cache_id}/history",
        "/api/v1/{cache_id}/flush",
        "/api/v1/{cache_id}/credentials",
        "/api/v1/{cache_id}/credentials/{credential}",
        "/api/v1/{cache_id}/credentials/primary/{credential}",
        "/api/v2/caches/{cache_id}/info",
        "/api/v2/caches/{cache_id}/credentials",
        "/api/v2/caches/{cache_id}/credentials/{credential}",
        "/api/v2/caches/{cache_id}/credentials/primary/{credential}",
        "/api/v2/caches/{cache_id}/flush",
        "/api/v2/caches/{cache_id}/reset_stats",
        "/api/v2/caches/{cache_id}/stats",
        "/api/v2/caches/{cache_id}/enable_cache",
        "/api/v2/caches/{cache_id}/insight/processed_stats",
        "/api/v2/caches/{cache_id}/insight/processed_stats/per_server",
        "/api/v2/caches/{cache_id}/flush_log",
        "/api/v1/hooks/{token}/flush",
        "/api/v2/caches/{cache_id}/hooks",
        "/api/v2/caches/{cache_id}/hooks/{hook_id}",
        "/metrics",
    ):
        assert path in paths


def test_no_server_errors(fuzzed: ServerProcess) -> None:
    base = f"http://127.0.0.1:{fuzzed.api_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    auth = basic(fuzzed.username, fuzzed.password)
    cache_id = "1"
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []

    def send(case: Any, headers: dict[str, str]) -> None:
        response = case.call(base_url=base, headers=headers, timeout=10)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
        try:
            case.validate_response(response, checks=CONFORMANCE)
        except (AssertionError, Failure, FailureGroup) as exc:
            failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if time.monotonic() > deadline:
            break
        # This module's routes; the dashboard and partner API have their own tests.
        if not operation.path.startswith(OWN_PREFIXES):
            continue

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            send(case, {})
            if "cache_id" in (case.path_parameters or {}):
                case.path_parameters["cache_id"] = cache_id
            send(case, auth)

        check()
    assert not failures, failures
