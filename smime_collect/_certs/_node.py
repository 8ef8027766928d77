"""SANS-I/O: one certificate as classification sees it, and how signatures are checked.

A :class:`ChainNode` holds what the rules in :mod:`smime_collect._certs._chain` read from a
certificate: its names and key identifiers (see :mod:`smime_collect._certs._x509`) and whether it
is self-signed.  That verdict can cost a signature check (real roots carry an SKI but no AKI), so
for a CA certificate the whole node is kept in the CA cache of :mod:`smime_collect._certs._fast`
and computed once per distinct certificate in the process.

Signature checks fall back to the public key for SHA-1 RSA, which ``verify_directly_issued_by``
refuses (``docs/explanation/formats.md``, "How certificates are classified").
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

from . import _fast
from ._der import DERError
from ._x509 import Fields, read_fields, unreadable_fields

__all__ = ["ChainNode", "Loaded", "read_node", "signature_check", "signed_by"]

# Certificates as a loader hands them on: each with its DER, which classification reads.
Loaded = list[tuple[x509.Certificate, bytes]]


class ChainNode(NamedTuple):
    """What classification reads from one certificate, read once.

    A NamedTuple: one is built for every certificate loaded.  Nodes are told apart by identity
    (``id``), never by value.

    Attributes:
        certificate: The certificate.
        der: Its DER encoding.
        issuer: The issuer Name's DER.
        subject: The subject Name's DER.
        ca: The cA flag of basicConstraints; None when the extension is absent.
        ski: The subjectKeyIdentifier, or None.
        aki: The authorityKeyIdentifier's keyIdentifier, or None.
        self_signed: Self-issued, and signed by its own key (see :func:`is_self_signed`).
    """

    certificate: x509.Certificate
    der: bytes
    issuer: bytes
    subject: bytes
    ca: bool | None
    ski: bytes | None
    aki: bytes | None
    self_signed: bool

    def tie_break(self) -> tuple[float, bytes]:
        """Sort key among equals: later notBefore first, then the smaller SHA-256 fingerprint.

        Returns:
            The key.
        """
        return (
            -self.certificate.not_valid_before_utc.timestamp(),
            hashlib.sha256(self.der).digest(),
        )


def read_node(certificate: x509.Certificate, der: bytes) -> ChainNode:
    """The node of a certificate: from the CA cache, or read from its DER.

    Args:
        certificate: The certificate.
        der: Its DER encoding.

    Returns:
        The node.  A CA certificate or a self-signed one is cached, so its next load costs a
        lookup, self-signature check included.
    """
    cached = _fast.ca_cache.get(der)
    if cached is not None:
        return cached
    issuer, subject, ca, ski, aki = _fast.read_fields(der) or _read_fields_strictly(der)
    self_signed = issuer == subject and is_self_signed(certificate, ski, aki)
    # tuple.__new__ skips the NamedTuple's generated __new__ and its argument handling: 0.2 us
    # of every end entity's load.
    node = tuple.__new__(ChainNode, (certificate, der, issuer, subject, ca, ski, aki, self_signed))
    if ca or self_signed:  # end entities are unique to an order: never cached
        _fast.ca_cache.put(node)
    return node


def _read_fields_strictly(der: bytes) -> Fields:
    try:
        return read_fields(der)
    except DERError:
        # cryptography loaded it (it reads extension values only when asked), yet its
        # basicConstraints or a key identifier does not parse: a certificate that links to
        # nothing, rather than an error about data the caller did not ask about.
        return unreadable_fields(der)


def is_self_signed(certificate: x509.Certificate, ski: bytes | None, aki: bytes | None) -> bool:
    """Whether a self-issued certificate was signed by its own key.

    When both key identifiers are present they decide (a self-signature is made by the key the
    AKI names, so AKI == SKI).  Otherwise the signature is checked; one that no library can check
    any more (MD2 on a 1990s v1 root) leaves the names to decide.

    Args:
        certificate: A certificate whose issuer and subject are the same name.
        ski: Its subjectKeyIdentifier.
        aki: Its authorityKeyIdentifier's keyIdentifier.

    Returns:
        The verdict.
    """
    if aki is not None and ski is not None:
        return aki == ski
    return signature_check(certificate, certificate) is not False


def signature_check(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether ``parent``'s key made ``child``'s signature.

    Tries ``verify_directly_issued_by`` first and falls back to a direct check with the public key,
    because cryptography refuses SHA-1 signatures there ("Unsupported signature algorithm") while
    old roots such as "AAA Certificate Services" (RSA) still carry one.

    Args:
        child: The certificate whose signature is checked.
        parent: The candidate issuer.

    Returns:
        True when the signature verifies, False when it does not, None when it cannot be checked
        at all (an algorithm cryptography does not implement, such as MD2 on old v1 roots).
    """
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = parent.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return None  # a key cryptography cannot parse or does not implement
        return _verify_with_key(child, key)
    return True


def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether the signature on ``child`` verifies with ``parent``'s key (see signature_check).

    Args:
        child: The certificate whose signature is checked.
        parent: The candidate issuer.

    Returns:
        True only when the signature was checked and verifies.
    """
    return signature_check(child, parent) is True


def _verify_with_key(child: x509.Certificate, key: object) -> bool | None:
    signature, data = child.signature, child.tbs_certificate_bytes
    try:
        algorithm = child.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        return None
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            # RSASSA-PSS signatures fail here and are left to verify_directly_issued_by above.
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
            key.verify(signature, data, algorithm)
        else:  # (Ed25519 and Ed448 are never refused above: they name no hash)
            return False
    except UnsupportedAlgorithm:
        return None
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
