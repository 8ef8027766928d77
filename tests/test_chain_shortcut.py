"""Tests that classify's shortcut for small chains gives what the issuer graph gives.

``classify`` answers an end entity + at most one CA + at most one root without building the issuer
graph, when nothing is left to sort.  Every set here, in every order, is classified with the
shortcut and with the graph only (the shortcut disabled), and the chains must be equal.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

import smime_collect._certs._chain
from smime_collect._certs._chain import CertificateChain, classify
from smime_collect._certs._facts import Facts, clear_ca_cache
from smime_collect.testing._pki import IssuedChain, TestCA

_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def issued() -> IssuedChain:
    """An end entity, one intermediate and a root."""
    return TestCA.create("Shortcut").issue_smime("carol@example.com", common_name="Carol")


def _issue(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool | None
) -> x509.Certificate:
    """A certificate for a fresh key, signed with ``key``; ``ca`` None: no basicConstraints."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + datetime.timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    return builder.sign(key, hashes.SHA256())


def _both_ways(
    certificates: Sequence[x509.Certificate], monkeypatch: pytest.MonkeyPatch
) -> tuple[CertificateChain, CertificateChain]:
    pairs = [(c, c.public_bytes(Encoding.DER)) for c in certificates]
    clear_ca_cache()
    fast = classify(pairs)
    with monkeypatch.context() as patch:
        patch.setattr(smime_collect._certs._chain, "_simple_chain", lambda *_: None)
        clear_ca_cache()
        slow = classify(pairs)
    return fast, slow


def _sets(issued: IssuedChain) -> dict[str, tuple[x509.Certificate, ...]]:
    key = ec.generate_private_key(ec.SECP256R1())
    odd_issuer = _issue("Odd CA", issued.end_entity.subject, key, ca=True)  # "issued" by the EE
    no_constraints = _issue("Dave", issued.intermediates[0].subject, key, ca=None)
    second = TestCA.create("Other").issue_smime("erin@example.com", common_name="Erin")
    end_entity, intermediate, root = issued.end_entity, issued.intermediates[0], issued.root
    return {
        "ee-ca-root": (end_entity, intermediate, root),
        "ee-ca": (end_entity, intermediate),
        "ee-root": (end_entity, root),
        "ee": (end_entity,),
        "ca-root bundle": (intermediate, root),
        "root": (root,),
        "two end entities": (end_entity, second.end_entity, root),
        "ca issued by the ee's name": (end_entity, odd_issuer, root),
        "ee without basicConstraints": (no_constraints, intermediate, root),
        "duplicates": (end_entity, intermediate, end_entity, root, intermediate),
        "two roots": (end_entity, root, second.root),
    }


class TestShortcutAgreesWithTheGraph:
    """Small sets give the same chain with and without the shortcut, in every order."""

    def test_every_set_and_order(
        self, issued: IssuedChain, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each permutation of each set: shortcut chain == graph chain."""
        for name, certificates in _sets(issued).items():
            for order in itertools.permutations(certificates):
                fast, slow = _both_ways(order, monkeypatch)
                assert fast == slow, (name, fast, slow)

    def test_ca_issued_by_the_end_entity_name_is_left_to_the_graph(
        self, issued: IssuedChain
    ) -> None:
        """A CA naming the non-CA as issuer makes the shortcut decline."""
        certificates = _sets(issued)["ca issued by the ee's name"]
        assert _shortcut(certificates) is None

    def test_the_common_chain_takes_the_shortcut(self, issued: IssuedChain) -> None:
        """End entity, intermediate and root need no graph: the shortcut answers."""
        chain = _shortcut(issued.certificates())
        assert chain is not None
        assert chain.end_entity == issued.end_entity
        assert chain.intermediates == issued.intermediates
        assert chain.roots == (issued.root,)


def _shortcut(certificates: Sequence[x509.Certificate]) -> CertificateChain | None:
    """What the shortcut answers for this set (roots told apart as classify does)."""
    facts = [Facts.read(c, c.public_bytes(Encoding.DER)) for c in certificates]
    roots = [f for f in facts if smime_collect._certs._chain._self_signed(f)]
    others = [f for f in facts if f not in roots]
    return smime_collect._certs._chain._simple_chain(others, roots)
