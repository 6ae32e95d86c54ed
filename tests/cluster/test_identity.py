"""The cluster CA is derived from the secret: every node rebuilds the very same certificate;
a node's own certificate is fresh at each start and signed by its current secret's CA."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from memcloud.cluster.identity import NodeIdentity, ca_of
from memcloud.cluster.secrets import ClusterSecrets, generate_secret


def test_the_same_secret_makes_the_same_ca_certificate_and_another_secret_another() -> None:
    secret = generate_secret().encode()
    first, again = ca_of(secret), ca_of(secret)
    der = first.certificate.public_bytes(serialization.Encoding.DER)
    assert der == again.certificate.public_bytes(serialization.Encoding.DER)
    assert first.id == again.id and first.id in first.certificate.subject.rfc4514_string()
    other = ca_of(generate_secret().encode())
    assert other.id != first.id
    assert other.certificate.public_key() != first.certificate.public_key()
    constraints = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0


def test_a_node_certificate_is_fresh_and_signed_by_the_current_secrets_ca() -> None:
    old, new = generate_secret().encode(), generate_secret().encode()
    one = NodeIdentity(ClusterSecrets(new, (old,)), name="node a")
    two = NodeIdentity(ClusterSecrets(new, (old,)))
    assert [ca.id for ca in one.trusted] == [ca_of(new).id, ca_of(old).id]
    assert one.describe() == f"cluster CA {ca_of(new).id} (also accepting {ca_of(old).id})"
    assert NodeIdentity(ClusterSecrets(new)).describe() == f"cluster CA {ca_of(new).id}"
    for identity in (one, two):
        identity.certificate.verify_directly_issued_by(ca_of(new).certificate)
        trusted = identity.server_context().get_ca_certs(binary_form=True)
        assert trusted == [
            ca_of(secret).certificate.public_bytes(serialization.Encoding.DER)
            for secret in (new, old)
        ]
    # Fresh keys at every start; the old secret's CA did not sign it.
    assert one.certificate.public_key() != two.certificate.public_key()
    with pytest.raises(ValueError, match=r"[Ii]ssuer"):
        one.certificate.verify_directly_issued_by(ca_of(old).certificate)
    usage = one.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert not usage.value.ca
    assert one.name == "node a" and one.name != two.name
    assert isinstance(one.certificate.public_key(), ec.EllipticCurvePublicKey)
