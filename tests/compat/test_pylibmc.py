"""pylibmc (libmemcached): binary protocol with SASL, as MemCachier's Python docs configure it.

The PyPI wheel's libsasl2 looks for its PLAIN plugin in SASL_PATH; Debian installs it with
libsasl2-modules. Without it libmemcached fails with "no mechanism available" (the error
section 8 of the reference quotes), so the path is set before pylibmc initialises SASL.
The checks themselves are in python/pylibmc_matrix.py, run in a process of their own (its
docstring says why).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Deployment

SCRIPT = Path(__file__).parent / "python" / "pylibmc_matrix.py"


def _sasl_plugin_dir() -> str | None:
    for path in sorted(glob.glob("/usr/lib/*/sasl2/libplain.so*")) + sorted(
        glob.glob("/usr/lib/sasl2/libplain.so*")
    ):
        return os.path.dirname(path)
    return None


def _run(deployment: Deployment, check: str) -> None:
    plugins = _sasl_plugin_dir()
    if plugins is None:
        if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
            pytest.fail("libsasl2-modules (SASL PLAIN plugin) is required in CI")
        pytest.skip("libsasl2-modules is not installed")
    env = {
        **os.environ,
        "SASL_PATH": os.environ.get("SASL_PATH", plugins),
        "MEMCLOUD_SERVER": deployment.address,
        "MEMCLOUD_USERNAME": deployment.username,
        "MEMCLOUD_PASSWORD": deployment.password,
        "MEMCLOUD_RO_USERNAME": deployment.ro_username,
        "MEMCLOUD_RO_PASSWORD": deployment.ro_password,
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT), check], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["ok", check]


def test_basic_operations(deployment: Deployment) -> None:
    _run(deployment, "basic")


def test_wrong_password_is_refused(deployment: Deployment) -> None:
    _run(deployment, "wrong-password")


def test_read_only_credential_cannot_write(deployment: Deployment) -> None:
    _run(deployment, "read-only")
