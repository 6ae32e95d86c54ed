"""How a node proves it belongs: mutual TLS whose certificate authority is derived from the
cluster secret, so that every node rebuilds the same CA and no CA file is ever handed out.

From each secret, HKDF-SHA256 (fixed salt and info) gives a P-256 private key: that
secret's cluster CA. Its certificate is built deterministically (a subject naming a short
hash of its public key, a fixed validity window, a serial taken from the key, RFC 6979
signatures), so every node makes the same one. At start a node makes a fresh key pair and a
certificate for it signed by the CA of its *current* secret; both live in memory only (the
one moment OpenSSL needs them as a file, they are an anonymous memory file).

Both ends of a channel connection require TLS 1.3 and a certificate that one of their
trusted CAs (current + accepted secrets) signed. Host names are not checked: nodes are
reached by IP address, and belonging is proved by the CA's signature alone.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from memcloud.cluster.secrets import ClusterSecrets

__all__ = ["ClusterCA", "NodeIdentity", "ca_of"]

# Changing any of these makes a new, incompatible cluster CA for every secret.
_HKDF_SALT: Final = b"memcloud cluster channel"
_HKDF_INFO: Final = b"memcloud cluster CA key v1"
# 384 bits reduced modulo the group order: the bias of the reduction is below 2**-128.
_KEY_MATERIAL: Final = 48
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ORGANIZATION: Final = "memcloud cluster"
_CA_NOT_BEFORE: Final = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
# RFC 5280's "no well-defined expiration date": the CA lives as long as its secret.
_CA_NOT_AFTER: Final = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
# A node's certificate starts a day early, so that machines whose clocks disagree by up to
# a day still accept each other.
_CLOCK_SKEW: Final = datetime.timedelta(days=1)


def _ca_key(secret: bytes) -> ec.EllipticCurvePrivateKey:
    material = HKDF(
        algorithm=hashes.SHA256(), length=_KEY_MATERIAL, salt=_HKDF_SALT, info=_HKDF_INFO
    ).derive(secret)
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True, slots=True, repr=False)
class ClusterCA:
    """One secret's certificate authority: its key (never leaves the process) and its
    certificate, the same on every node that knows the secret."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    # A short hash of the CA's public key: safe to log, the same on every machine that has
    # the same secret (an operator compares it to find a machine with a different one).
    id: str

    def __repr__(self) -> str:
        return f"ClusterCA(id={self.id!r})"


def ca_of(secret: bytes) -> ClusterCA:
    """The cluster CA of a secret (deterministic: the same secret gives the same CA)."""
    key = _ca_key(secret)
    public = _public_der(key.public_key())
    digest = hashlib.sha256(public).digest()
    ca_id = digest[:4].hex()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"memcloud cluster CA {ca_id}"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(digest[:16], "big") >> 1 or 1)
        .not_valid_before(_CA_NOT_BEFORE)
        .not_valid_after(_CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return ClusterCA(key, certificate, ca_id)


def _node_certificate(
    ca: ClusterCA, key: ec.EllipticCurvePrivateKey, name: str
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    ca_public = ca.certificate.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(_CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), False)
        .sign(ca.key, hashes.SHA256())
    )


@contextlib.contextmanager
def _private_pem_file(pem: bytes) -> Iterator[str]:
    """A path OpenSSL can read `pem` from (ssl loads a certificate chain only from a file):
    an anonymous memory file where Linux has them, else a file in a private temporary
    directory, removed at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("memcloud-cluster-node", os.MFD_CLOEXEC)
        try:
            os.write(fd, pem)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="memcloud-cluster-") as directory:
        path = Path(directory) / "node.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        yield str(path)


class NodeIdentity:
    """This node's membership proof: a fresh key and certificate signed by the CA of its
    current secret, and the CAs (current + accepted secrets) it trusts in its peers.

    Build one at start; its two TLS contexts are made once and shared by every channel
    connection."""

    __slots__ = ("_client", "_server", "ca", "certificate", "name", "trusted")

    def __init__(self, cluster: ClusterSecrets, name: str | None = None) -> None:
        self.ca = ca_of(cluster.current)
        self.trusted: tuple[ClusterCA, ...] = (
            self.ca,
            *(ca_of(secret) for secret in cluster.previous),
        )
        self.name = name or f"memcloud node {secrets.token_hex(6)}"
        key = ec.generate_private_key(ec.SECP256R1())
        # Public: what this node shows its peers (its key never leaves this object).
        self.certificate = _node_certificate(self.ca, key, self.name)
        pem = self.certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cadata = "".join(
            ca.certificate.public_bytes(serialization.Encoding.PEM).decode() for ca in self.trusted
        )
        self._server = self._context(ssl.PROTOCOL_TLS_SERVER, pem, cadata)
        self._client = self._context(ssl.PROTOCOL_TLS_CLIENT, pem, cadata)

    @staticmethod
    def _context(protocol: ssl._SSLMethod, pem: bytes, cadata: str) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        # Reached by IP address; the CA's signature is the proof (module docstring).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=cadata)
        with _private_pem_file(pem) as path:
            context.load_cert_chain(path)
        return context

    def server_context(self) -> ssl.SSLContext:
        """For the channel's listener: only peers with a trusted certificate get through."""
        return self._server

    def client_context(self) -> ssl.SSLContext:
        """For connecting to a peer: only a peer with a trusted certificate is talked to."""
        return self._client

    def describe(self) -> str:
        """A log line's worth, with no secret in it: `cluster CA 1a2b3c4d (also accepting
        5e6f7a8b)`."""
        accepted = ", ".join(ca.id for ca in self.trusted[1:])
        return f"cluster CA {self.ca.id}" + (f" (also accepting {accepted})" if accepted else "")

    def __repr__(self) -> str:
        return f"NodeIdentity({self.name!r}, {self.describe()})"
