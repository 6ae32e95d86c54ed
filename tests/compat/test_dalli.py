"""Ruby's Dalli: binary protocol with SASL PLAIN (username:/password: options);
tests/compat/ruby/matrix.rb holds the checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require_tool

from .conftest import Deployment

SCRIPT = Path(__file__).parent / "ruby" / "matrix.rb"


def test_dalli_matrix(deployment: Deployment) -> None:
    ruby = require_tool("ruby")
    env = {
        **os.environ,
        "MEMCLOUD_SERVER": deployment.address,
        "MEMCLOUD_USERNAME": deployment.username,
        "MEMCLOUD_PASSWORD": deployment.password,
        "MEMCLOUD_RO_USERNAME": deployment.ro_username,
        "MEMCLOUD_RO_PASSWORD": deployment.ro_password,
    }
    result = subprocess.run(
        [ruby, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    if "cannot load such file -- dalli" in result.stderr and not os.environ.get(
        "MEMCLOUD_REQUIRE_ALL_TOOLS"
    ):
        import pytest

        pytest.skip("ruby-dalli is not installed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["ok", "basic", "ok", "wrong-password", "ok", "read-only"]
