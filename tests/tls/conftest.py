"""Certificates made in the test with trustme, and real `memcloud serve` processes with TLS.

The server's certificate (for 127.0.0.1 and localhost) comes from one test CA; client
certificates come from a second CA, the one `--tls-client-ca` names.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from memcloud.testing import ServerProcess


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA that signed the server's certificate (clients trust it)
    cert: Path
    key: Path
    client_ca: Path  # the CA of client certificates
    client_cert: Path  # certificate and key of a client the client CA signed
    stranger_cert: Path  # a client certificate from a CA the server does not trust

    def tls_args(self) -> tuple[str, ...]:
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key), "--tls-port", "0")

    def client_context(self, cert: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            context.load_cert_chain(str(cert))
        return context


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    server_ca, client_ca, stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: directory / f"{name}.pem" for name in Certs.__dataclass_fields__}
    server_ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(paths["cert"]), append=True)
    server.private_key_pem.write_to_path(str(paths["key"]))
    client_ca.cert_pem.write_to_path(str(paths["client_ca"]))
    client_ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(paths["client_cert"])
    )
    stranger_ca.issue_cert("stranger@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(paths["stranger_cert"])
    )
    return Certs(**paths)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ServerProcess]:
    """Plain and TLS ports both open; the first start's `default` cache and credential."""
    with ServerProcess(tmp_path_factory.mktemp("tls") / "data", *certs.tls_args()) as server:
        assert server.tls_port
        yield server
