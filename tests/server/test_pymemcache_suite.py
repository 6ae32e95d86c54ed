"""pymemcache's own integration suite (shipped in its wheel, pymemcache/test/) against an
anonymous memcloud, run as its authors run it: `pytest -m integration test_integration.py
--server HOST --port PORT`, in a subprocess.

One test of it cannot pass, on purpose: `test_misc` calls `cache_memlimit(50)` and expects
`OK`, and memcloud refuses a tenant's `cache_memlimit` (a cache's memory is its plan, the
operator's; docs/text-protocol.md). It is deselected from the run, and its steps are checked
here instead with the refusal expected.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymemcache
import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from memcloud.testing import ServerProcess

SUITE = Path(pymemcache.__file__).parent / "test" / "test_integration.py"
# pymemcache's test that needs the server to take a client's memory limit (see above).
REFUSED_ON_PURPOSE = "test_misc"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data_dir: Path = tmp_path_factory.mktemp("pymemcache-suite") / "data"
    with ServerProcess(data_dir, "--anonymous-cache", "pymemcache") as proc:
        yield proc.port


def test_pymemcache_integration_suite_passes(port: int) -> None:
    assert SUITE.exists(), SUITE
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "integration",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestUnknownMarkWarning",
            "-k",
            f"not {REFUSED_ON_PURPOSE}",
            str(SUITE),
            "--server",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        # Its own conftest.py (the --server and --port options) is beside it; ours must
        # not be picked up.
        cwd=SUITE.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # Everything it holds ran: only its TLS test is skipped by its authors, for its own
    # reasons (pymemcache issue 39), and test_misc's cases are the ones deselected.
    assert "deselected" in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 90, summary


def test_pymemcache_misc_steps_with_memlimit_refused(port: int) -> None:
    for key_prefix in (b"", b"prefix"):
        client = Client(("127.0.0.1", port), key_prefix=key_prefix)
        client.flush_all()
        assert client.stats("cachedump", "1", "1") == {}
        with pytest.raises(MemcacheClientError, match="cache_memlimit is refused"):
            client.cache_memlimit(50)
        client.close()
