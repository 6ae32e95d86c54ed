"""`/openapi.json` of a real server tells the truth: it passes openapi-spec-validator, every
operation has its own operationId and typed answers, the security schemes are declared, and
every real answer (success and refusal alike) has a status the document lists and a body its
schema accepts.

The walk below sends each route of the API, the partner API and /metrics real requests over
HTTP; `Contract.check` validates every answer against the operation's declaration with
jsonschema (OpenAPI 3.1 schemas are JSON Schema 2020-12).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from memcloud.testing import ServerProcess, wait_for

from .conftest import SAMPLE_ENV, Api, Cred, basic

PARTNER_USER = "memcachier"
PARTNER_PASSWORD = "partner-secret"
PARTNER_ENV = {
    "MEMCLOUD_PROVISION_USER": PARTNER_USER,
    "MEMCLOUD_PROVISION_PASSWORD": PARTNER_PASSWORD,
}
METHODS = ("get", "put", "post", "delete", "patch")
V1 = "/api/v1/{cache_id}"
V2 = "/api/v2/caches/{cache_id}"
# The operations of this API, its partner API and /metrics: each must be answered with a
# success in the walk (a route added later is checked by the static tests and the fuzz test).
WALKED = {
    ("get", "/api/v1/login"),
    ("get", "/api/login"),
    ("get", f"{V1}/stats"),
    ("get", f"{V1}/history"),
    ("post", f"{V1}/flush"),
    ("get", f"{V1}/credentials"),
    ("post", f"{V1}/credentials"),
    ("post", f"{V1}/credentials/{{credential}}"),
    ("patch", f"{V1}/credentials/{{credential}}"),
    ("put", f"{V1}/credentials/{{credential}}"),
    ("delete", f"{V1}/credentials/{{credential}}"),
    ("post", f"{V1}/credentials/primary/{{credential}}"),
    ("delete", f"{V1}/credentials/primary/{{credential}}"),
    ("get", f"{V2}/info"),
    ("get", f"{V2}/credentials"),
    ("post", f"{V2}/credentials"),
    ("patch", f"{V2}/credentials/{{credential}}"),
    ("put", f"{V2}/credentials/{{credential}}"),
    ("delete", f"{V2}/credentials/{{credential}}"),
    ("post", f"{V2}/credentials/primary/{{credential}}"),
    ("post", f"{V2}/flush"),
    ("post", f"{V2}/reset_stats"),
    ("get", f"{V2}/stats"),
    ("post", f"{V2}/enable_cache"),
    ("get", f"{V2}/insight/processed_stats"),
    ("get", f"{V2}/insight/processed_stats/per_server"),
    ("get", f"{V2}/flush_log"),
    ("post", f"{V2}/rotate_sso"),
    ("get", "/metrics"),
    ("post", "/heroku/resources"),
    ("put", "/heroku/resources/{uuid}"),
    ("delete", "/heroku/resources/{uuid}"),
}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


@dataclass
class Contract:
    doc: dict[str, Any]
    answered: set[tuple[str, str, int]] = field(default_factory=set)

    def check(self, method: str, template: str, response: httpx.Response) -> httpx.Response:
        """Assert the answer is one the document declares for this operation."""
        operation = self.doc["paths"][template][method]
        status = response.status_code
        where = f"{method.upper()} {template} -> {status} {response.text[:200]!r}"
        assert str(status) in operation["responses"], f"undeclared status: {where}"
        declared = operation["responses"][str(status)].get("content", {})
        if status == 204 or not response.content:
            assert not response.content and not declared, f"declared a body: {where}"
        else:
            media = response.headers["content-type"].split(";")[0].strip()
            assert media in declared, f"undeclared content type {media}: {where}"
            schema = declared[media]["schema"]
            assert schema, f"untyped answer: {where}"
            body = response.json() if media == "application/json" else response.text
            # The document's components travel with the schema, so its $refs resolve.
            rooted = {**schema, "components": self.doc["components"]}
            errors = list(jsonschema.Draft202012Validator(rooted).iter_errors(body))
            assert not errors, f"{where}: {[e.message for e in errors][:3]}"
        self.answered.add((method, template, status))
        return response


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**SAMPLE_ENV, **PARTNER_ENV}
    with ServerProcess(tmp_path_factory.mktemp("contract") / "data", env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(served: ServerProcess) -> Iterator[Api]:
    api = Api(served)
    yield api
    api.close()


@pytest.fixture(scope="module")
def doc(client: Api) -> dict[str, Any]:
    reply = client.http.get("/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


def test_document_passes_openapi_spec_validator(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_every_operation_has_its_own_operation_id(doc: dict[str, Any]) -> None:
    ids = [str(op.get("operationId") or "") for _, _, op in operations(doc)]
    assert all(ids), ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {
        "v1_update_credential",
        "v1_update_credential_patch",
        "v1_update_credential_put",
    } <= set(ids)


def test_every_answer_is_typed(doc: dict[str, Any]) -> None:
    """Each operation declares a success, and every body it declares has a schema."""
    for method, path, op in operations(doc):
        statuses = set(op["responses"])
        assert any(s.startswith("2") for s in statuses), (method, path)
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, status, media)
        assert "content" not in op["responses"].get("204", {}), (method, path)


def test_no_422_where_the_api_answers_400(doc: dict[str, Any]) -> None:
    """The API answers a request it cannot validate with 400 in its own shape; only the
    partner API, whose platforms expect it, answers 422 (with its `{"message"}` body)."""
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        if "422" in op["responses"]:
            assert path.startswith("/heroku/"), (method, path)
            ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/PartnerError")


def test_security_schemes_are_declared(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["cacheCredential"] == {
        **schemes["cacheCredential"],
        "type": "http",
        "scheme": "basic",
    }
    assert schemes["partnerCredential"]["scheme"] == "basic"
    assert schemes["metricsToken"] == {
        **schemes["metricsToken"],
        "type": "http",
        "scheme": "bearer",
    }
    for method, path, op in operations(doc):
        if path.startswith("/api/"):
            assert op["security"] == [{"cacheCredential": []}], (method, path)
        elif path.startswith("/heroku/"):
            assert op["security"] == [{"partnerCredential": []}], (method, path)
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]


def test_the_server_log_has_no_openapi_warning(tmp_path: Path) -> None:
    """FastAPI warns into the server's log about duplicate operationIds when it builds the
    document; none may appear."""
    with ServerProcess(tmp_path / "data") as proc:
        reply = httpx.get(f"http://127.0.0.1:{proc.api_port}/openapi.json", timeout=10)
        assert reply.status_code == 200
    log = proc.stdout + proc.stderr
    assert "Duplicate Operation ID" not in log
    assert not re.search(r"\w+Warning:", log), log[-2000:]


def test_root_redirects_to_the_dashboard_sign_in(client: Api) -> None:
    reply = client.http.get("/")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/dashboard"
    final = client.http.get("/", follow_redirects=True)
    assert final.status_code == 200
    assert final.url.path == "/dashboard/login"
    assert "<form" in final.text


def _walk_v1(api: Api, contract: Contract, other: Cred) -> None:
    main = api.main
    base = f"/api/v1/{main.cache_id}"

    def call(
        method: str, template: str, path: str, cred: Cred | None = main, **kw: Any
    ) -> httpx.Response:
        return contract.check(method, template, api.request(method.upper(), path, cred, **kw))

    assert call("get", "/api/v1/login", "/api/v1/login").json() == {"cache_id": main.cache_id}
    call("get", "/api/login", "/api/login")
    assert call("get", "/api/v1/login", "/api/v1/login", None).status_code == 403
    stats = call("get", f"{V1}/stats", f"{base}/stats")
    assert stats.status_code == 200 and len(stats.json()) == 1
    assert call("get", f"{V1}/stats", "/api/v1/abc/stats").status_code == 404
    assert call("get", f"{V1}/stats", f"/api/v1/{other.cache_id}/stats").status_code == 403
    assert wait_for(lambda: bool(api.request("GET", f"{base}/history", main).json()), timeout=10)
    assert call("get", f"{V1}/history", f"{base}/history").json()
    flushed = call("post", f"{V1}/flush", f"{base}/flush", data={"app": "shop", "head": "abc1234"})
    assert flushed.json() == ""
    assert call("get", f"{V1}/credentials", f"{base}/credentials").status_code == 200
    new = call("post", f"{V1}/credentials", f"{base}/credentials").json()
    name = new["sasl_username"]
    item = f"{V1}/credentials/{{credential}}"
    for method, value in (("post", "false"), ("patch", False), ("put", "true")):
        reply = call(method, item, f"{base}/credentials/{name}", json={"flush_capability": value})
        assert reply.status_code == 200
    assert (
        call(
            "patch", item, f"{base}/credentials/{name}", json={"flush_capability": "maybe"}
        ).status_code
        == 400
    )
    assert call("patch", item, f"{base}/credentials/nobody").status_code == 404
    primary = f"{V1}/credentials/primary/{{credential}}"
    assert call("post", primary, f"{base}/credentials/primary/{name}").json()["primary"] is True
    assert call("post", primary, f"{base}/credentials/primary/{main.username}").status_code == 200
    # The primary cannot go while others remain: refused with 400.
    assert call("delete", item, f"{base}/credentials/{main.username}").status_code == 400
    assert call("delete", item, f"{base}/credentials/{name}").json() == ""
    second = call("post", f"{V1}/credentials", f"{base}/credentials").json()["sasl_username"]
    assert call("delete", primary, f"{base}/credentials/primary/{second}").json() == ""


def _walk_v2(api: Api, contract: Contract, other: Cred) -> None:
    main = api.main
    base = f"/api/v2/caches/{main.cache_id}"

    def call(
        method: str, template: str, path: str, cred: Cred | None = main, **kw: Any
    ) -> httpx.Response:
        return contract.check(method, template, api.request(method.upper(), path, cred, **kw))

    info = call("get", f"{V2}/info", f"{base}/info")
    assert info.json()["id"] == main.cache_id
    assert call("get", f"{V2}/info", "/api/v2/caches/x/info").status_code == 400
    assert call("get", f"{V2}/info", f"{base}/info", None).status_code == 401
    bad = Cred(main.username, "wrong", main.cache_id)
    assert call("get", f"{V2}/info", f"{base}/info", bad).json() == {"message": "Bad user"}
    assert call("get", f"{V2}/info", f"/api/v2/caches/{other.cache_id}/info").status_code == 403
    assert call("get", f"{V2}/info", "/api/v2/caches/999999/info").status_code == 404
    call("get", f"{V2}/credentials", f"{base}/credentials")
    created = call("post", f"{V2}/credentials", f"{base}/credentials")
    assert created.status_code == 201
    name = created.json()["sasl_username"]
    item = f"{V2}/credentials/{{credential}}"
    for method in ("patch", "put"):
        body = {"write_capability": True, "flush_capability": True, "api_capability": True}
        assert call(method, item, f"{base}/credentials/{name}", json=body).status_code == 200
    assert call("patch", item, f"{base}/credentials/{name}", content=b"[1]").status_code == 400
    assert call("patch", item, f"{base}/credentials/nobody", json={}).status_code == 404
    promoted = call(
        "post", f"{V2}/credentials/primary/{{credential}}", f"{base}/credentials/primary/{name}"
    )
    assert promoted.json()["primary"] is True
    call(
        "post",
        f"{V2}/credentials/primary/{{credential}}",
        f"{base}/credentials/primary/{main.username}",
    )
    assert call("delete", item, f"{base}/credentials/{name}").json() == "Delete successful"
    webhook = {
        "resource": "release",
        "action": "update",
        "data": {"app": {"name": "shop"}, "version": 7},
    }
    assert call("post", f"{V2}/flush", f"{base}/flush", json=webhook).status_code == 204
    assert call("post", f"{V2}/reset_stats", f"{base}/reset_stats").status_code == 204
    assert set(call("get", f"{V2}/stats", f"{base}/stats").json()) >= {"get_hits", "limit_maxbytes"}
    assert call("post", f"{V2}/enable_cache", f"{base}/enable_cache").status_code == 200
    for template in (f"{V2}/insight/processed_stats", f"{V2}/insight/processed_stats/per_server"):
        path = template.replace(V2, base)
        series = call("get", template, path, params={"names": "hit_rate,get_rate,bytes"}).json()
        assert series and series[0]["values"], series
        assert call("get", template, path).status_code == 400
        assert call("get", template, path, params={"names": "nope"}).status_code == 400
    assert wait_for(lambda: bool(api.request("GET", f"{base}/flush_log", main).json()), timeout=10)
    assert call("get", f"{V2}/flush_log", f"{base}/flush_log").json()
    # A query parameter out of range is the API's 400, not FastAPI's 422.
    refused = call("get", f"{V2}/flush_log", f"{base}/flush_log", params={"limit": "0"})
    assert refused.status_code == 400 and "message" in refused.json()
    assert (
        call("post", f"{V2}/rotate_sso", f"{base}/rotate_sso").json() == "SSO rotation successful"
    )


def _walk_metrics_and_partner(api: Api, contract: Contract) -> None:
    token = (api.proc.data_dir / "metrics-token").read_text().strip()
    scrape = api.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert "memcloud_" in contract.check("get", "/metrics", scrape).text
    assert contract.check("get", "/metrics", api.http.get("/metrics")).status_code == 401

    partner = basic(PARTNER_USER, PARTNER_PASSWORD)
    resource = str(uuid.uuid4())

    def call(method: str, template: str, path: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", partner)
        return contract.check(
            method, template, api.http.request(method.upper(), path, headers=headers, **kw)
        )

    made = call(
        "post", "/heroku/resources", "/heroku/resources", json={"uuid": resource, "plan": "dev"}
    )
    assert made.status_code == 200 and made.json()["id"] == resource
    assert (
        call(
            "post",
            "/heroku/resources",
            "/heroku/resources",
            json={"uuid": resource, "plan": "huge"},
        ).status_code
        == 422
    )
    assert (
        call("post", "/heroku/resources", "/heroku/resources", content=b"not json").status_code
        == 400
    )
    assert (
        call("post", "/heroku/resources", "/heroku/resources", headers={}, json={}).status_code
        == 401
    )
    item = "/heroku/resources/{uuid}"
    assert (
        call("put", item, f"/heroku/resources/{resource}", json={"plan": "dev"}).status_code == 200
    )
    assert (
        call("put", item, f"/heroku/resources/{uuid.uuid4()}", json={"plan": "dev"}).status_code
        == 404
    )
    assert call("delete", item, f"/heroku/resources/{resource}").status_code == 204


def test_real_answers_match_their_declared_schemas(client: Api, doc: dict[str, Any]) -> None:
    contract = Contract(doc)
    other = client.new_cache("contract-other")
    _walk_v1(client, contract, other)
    _walk_v2(client, contract, other)
    _walk_metrics_and_partner(client, contract)
    succeeded = {(m, t) for m, t, status in contract.answered if 200 <= status < 300}
    assert {(m, p) for m, p, _ in operations(doc)} >= WALKED
    assert not WALKED - succeeded, sorted(WALKED - succeeded)


def test_throttled_logins_answer_the_declared_429(tmp_path: Path) -> None:
    """Past the free failures every authenticated route answers 429 as documented."""
    with (
        ServerProcess(tmp_path / "data", env=PARTNER_ENV) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{proc.api_port}", timeout=10) as http,
    ):
        contract = Contract(http.get("/openapi.json").json())
        wrong = basic(proc.username, "wrong")
        assert wait_for(
            lambda: http.get("/api/v1/login", headers=wrong).status_code == 429, timeout=20
        )
        for method, template, path in (
            ("get", "/api/v1/login", "/api/v1/login"),
            ("get", f"{V2}/stats", "/api/v2/caches/1/stats"),
            ("post", "/heroku/resources", "/heroku/resources"),
        ):
            reply = contract.check(method, template, http.request(method, path, headers=wrong))
            assert reply.status_code == 429, reply.text
            assert reply.headers["retry-after"].isdigit()
