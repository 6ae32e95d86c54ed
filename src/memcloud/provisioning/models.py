"""The partner API's answers as pydantic models, for `/openapi.json` only.

The routes (partner.py) build their JSON themselves; these declare it. Object models forbid
unknown fields, so the API's contract test (tests/api/test_openapi_contract.py) fails when a
route's answer and its declaration part.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PARTNER_ERRORS",
    "PartnerError",
    "PlanChanged",
    "Provisioned",
    "ServerFailure",
    "partner_errors",
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerError(_Shape):
    message: str


class ServerFailure(_Shape):
    """A failure of the server itself (the control database), in the app's generic shape."""

    detail: str


_WARNINGS = (
    "the operator's warnings, empty when none: the plans placed on the cache's cluster"
    " exceed its live nodes' memory (the request still succeeded)"
)


class Provisioned(_Shape):
    id: str = Field(description="the platform's resource uuid (the cache's name)")
    config: dict[str, str] = Field(
        description="MEMCACHIER_SERVERS, MEMCACHIER_USERNAME, MEMCACHIER_PASSWORD"
    )
    message: str
    warnings: list[str] = Field(description=_WARNINGS)


class PlanChanged(_Shape):
    config: dict[str, str] = Field(description="the resource's config vars, as provisioned")
    message: str
    warnings: list[str] = Field(description=_WARNINGS)


def partner_errors(**rows: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` rows with the partner API's `{"message"}` body: `e404="..."` is a 404."""
    return {
        int(key[1:]): {"model": PartnerError, "description": text} for key, text in rows.items()
    }


# What every partner call may answer besides its success.
PARTNER_ERRORS = {
    **partner_errors(
        e401="unauthorized (the add-on id and password are wrong or missing)",
        e429="too many failed logins; try again later (see Retry-After)",
        e503="provisioning is not enabled (--provision-user/--provision-password)",
    ),
    500: {"model": ServerFailure, "description": "Unexpected error. (the control database failed)"},
}
