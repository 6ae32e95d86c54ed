"""Sign-in on the HTTP paths, shared by the API, the dashboard and provisioning.

The login throttle there: API Basic auth, dashboard and admin sign-in, the partner API and
SSO. Same counts as the memcache paths (the process's one AuthThrottle), but an attempt that
would have to wait is refused at once: 429 with `Retry-After`.

It sits below all three HTTP front ends (tests/test_layering.py): the dashboard and
provisioning use it without importing the API's package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from memcloud.auth_throttle import AuthThrottle, retry_after
from memcloud.service import Service

__all__ = ["LoginGuard", "client_address"]


def client_address(request: Request) -> str:
    """The peer's IP address (uvicorn runs without proxy headers: this is the socket's peer)."""
    return request.client.host if request.client else "?"


@dataclass(frozen=True, slots=True)
class LoginGuard:
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    now: Callable[[], float] = time.time

    @classmethod
    def of(cls, service: Service) -> LoginGuard:
        """The guard sharing the data plane's throttle and clock in this process."""
        return cls(service.auth_throttle, service.clock.now)

    def refusal(self, request: Request, username: str) -> str | None:
        """None: check the password now. Otherwise the `Retry-After` value to answer 429
        with; the password must not be checked."""
        admission = self.throttle.admit_now(client_address(request), self.now(), username)
        return None if admission.check else retry_after(admission.delay)

    def failed(self, request: Request, username: str) -> None:
        self.throttle.failed(client_address(request), self.now(), username)
