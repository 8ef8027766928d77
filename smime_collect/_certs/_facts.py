"""SANS-I/O: what classification reads from each certificate, and how signatures are checked.

Reading names and key identifiers through cryptography's objects builds Python ``Name`` and
extension objects (several microseconds each), so :class:`Facts` reads them straight from the DER
that was just loaded: the issuer and subject as raw bytes (compared byte for byte, as OpenSSL's
``X509_NAME_cmp`` compares canonical encodings) and the three extensions classification needs.

Signature checks fall back to the public key for SHA-1 RSA, which ``verify_directly_issued_by``
refuses (DOMAIN.md, "Chains from Sectigo").

This module does no I/O.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "Facts",
    "clear_ca_cache",
    "common_name",
    "issuer_common_name",
    "known_ca_base64",
    "known_ca_certificate",
    "remember_ca_base64",
    "signature_check",
    "signed_by",
]

# RFC 5280 section 4.2.1: basicConstraints (2.5.29.19), subjectKeyIdentifier (2.5.29.14) and
# authorityKeyIdentifier (2.5.29.35), told apart by the last octet after the id-ce prefix.
_ID_CE = b"\x06\x03\x55\x1d"  # OBJECT IDENTIFIER 2.5.29.x, three content octets
_EXTENSION_KINDS = {0x13: 0, 0x0E: 1, 0x23: 2}


def _header(der: bytes, pos: int) -> tuple[int, int, int]:
    # Only ever called on DER that cryptography has already parsed as a certificate, so the
    # structure is known to be sound; IndexError/ValueError are still caught by the caller.
    first = der[pos + 1]
    if first < 0x80:
        return der[pos], pos + 2, pos + 2 + first
    start = pos + 2 + (first & 0x7F)
    return der[pos], start, start + int.from_bytes(der[pos + 2 : start], "big")


def _long_content(der: bytes, pos: int, first: int) -> tuple[int, int]:
    # Where the content of the element at ``pos`` starts and ends, ``first`` (its first length
    # octet) announcing a long-form length.
    start = pos + 2 + (first & 0x7F)
    return start, start + int.from_bytes(der[pos + 2 : start], "big")


def _read_extensions(der: bytes, start: int) -> tuple[bool | None, bytes | None, bytes | None]:
    """The cA flag, SKI and AKI keyIdentifier from ``[3] { SEQUENCE OF Extension }``."""
    ca: bool | None = None
    ski = aki = None
    seen = 0
    first = der[start + 1]  # the SEQUENCE OF Extension
    position, end = (
        (start + 2, start + 2 + first) if first < 0x80 else _long_content(der, start, first)
    )
    startswith = der.startswith
    while position < end:
        first = der[position + 1]  # Extension ::= SEQUENCE { extnID, critical, extnValue }
        if first < 0x80:
            oid = position + 2
            position = oid + first
        else:
            oid = position + 2 + (first & 0x7F)
            position = oid + int.from_bytes(der[position + 2 : oid], "big")
        # The OID's last octet rejects most extensions (key usage, SAN, policies...) at once.
        kind = _EXTENSION_KINDS.get(der[oid + 4])
        if kind is None or not startswith(_ID_CE, oid):
            continue
        value = oid + 5
        if der[value] == 0x01:  # critical BOOLEAN
            value += 2 + der[value + 1]
        # The OCTET STRING extnValue, then the structure it holds: short lengths inline.
        first = der[value + 1]
        value = value + 2 if first < 0x80 else value + 2 + (first & 0x7F)
        first = der[value + 1]
        if first < 0x80:
            inner, inner_end = value + 2, value + 2 + first
        else:
            _, inner, inner_end = _header(der, value)
        if kind == 0:  # BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }
            ca = inner < inner_end and der[inner] == 0x01 and der[inner + 2] != 0
        elif kind == 1:  # SubjectKeyIdentifier ::= OCTET STRING
            ski = der[inner:inner_end]
        elif inner < inner_end and der[inner] == 0x80:  # AKI keyIdentifier [0]
            first = der[inner + 1]
            key_start, key_end = (
                (inner + 2, inner + 2 + first) if first < 0x80 else _long_content(der, inner, first)
            )
            aki = der[key_start:key_end]
        seen |= 1 << kind
        if seen == 0b111:  # all three found: the rest (SAN, policies, AIA...) can wait
            break
    return ca, ski, aki


class Facts(NamedTuple):
    """What classification needs from one certificate, read once.

    A NamedTuple rather than an attrs class: it is built for every certificate on the hot path of
    ``load_certificates`` and tuple construction is several times cheaper.  Instances are told
    apart by identity (``id``), never by value.
    """

    certificate: x509.Certificate
    der: bytes
    issuer: bytes
    subject: bytes
    ca: bool | None  # None: no basicConstraints extension
    ski: bytes | None
    aki: bytes | None

    @classmethod
    def read(cls, certificate: x509.Certificate, der: bytes) -> Facts:
        """Read names and the three extensions straight from the DER (cheap), or fall back."""
        cached = _CA_FACTS.get(der)
        if cached is not None:
            return cached
        try:
            facts = cls._from_der(certificate, der)
        except (IndexError, ValueError):  # pragma: no cover - cryptography parsed it already
            facts = cls._from_objects(certificate, der)
        if facts.ca:
            _remember_ca(facts)
        return facts

    @classmethod
    def _from_der(cls, certificate: x509.Certificate, der: bytes) -> Facts:
        # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
        # signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions } }
        # This runs for every certificate loaded, so each element is skipped inline: "first"
        # is its first length octet, and only long-form lengths (>= 0x80) cost a call.
        first = der[1]
        pos = 2 if first < 0x80 else 2 + (first & 0x7F)  # into the Certificate
        first = der[pos + 1]
        if first < 0x80:  # into tbsCertificate
            pos, tbs_end = pos + 2, pos + 2 + first
        else:
            pos, tbs_end = _long_content(der, pos, first)
        if der[pos] == 0xA0:
            pos += 2 + der[pos + 1]  # [0] EXPLICIT INTEGER: always short
        first = der[pos + 1]  # serialNumber
        pos = pos + 2 + first if first < 0x80 else _long_content(der, pos, first)[1]
        first = der[pos + 1]  # signature AlgorithmIdentifier
        pos = pos + 2 + first if first < 0x80 else _long_content(der, pos, first)[1]
        first = der[pos + 1]
        end = pos + 2 + first if first < 0x80 else _long_content(der, pos, first)[1]
        issuer = der[pos:end]
        first = der[end + 1]  # validity
        pos = end + 2 + first if first < 0x80 else _long_content(der, end, first)[1]
        first = der[pos + 1]
        end = pos + 2 + first if first < 0x80 else _long_content(der, pos, first)[1]
        subject = der[pos:end]
        first = der[end + 1]  # subjectPublicKeyInfo
        pos = end + 2 + first if first < 0x80 else _long_content(der, end, first)[1]
        ca: bool | None = None
        ski = aki = None
        while pos < tbs_end:  # issuerUniqueID [1] and subjectUniqueID [2] are skipped
            tag, first = der[pos], der[pos + 1]
            if first < 0x80:
                start, pos = pos + 2, pos + 2 + first
            else:
                start, pos = _long_content(der, pos, first)
            if tag == 0xA3:
                ca, ski, aki = _read_extensions(der, start)
        # tuple.__new__ skips the generated __new__ and its keyword handling (half the cost).
        return tuple.__new__(cls, (certificate, der, issuer, subject, ca, ski, aki))

    @classmethod
    def _from_objects(cls, certificate: x509.Certificate, der: bytes) -> Facts:  # pragma: no cover
        try:
            return cls._from_parsed_fields(certificate, der)
        except (ValueError, x509.DuplicateExtension):
            # Fields cryptography cannot parse: a certificate that links to nothing.
            token = hashlib.sha256(der).digest()
            return cls(certificate, der, b"issuer?" + token, b"subject?" + token, None, None, None)

    @classmethod
    def _from_parsed_fields(
        cls, certificate: x509.Certificate, der: bytes
    ) -> Facts:  # pragma: no cover
        extensions = certificate.extensions
        ca: bool | None = None
        ski = aki = None
        for extension in extensions:
            value = extension.value
            if isinstance(value, x509.BasicConstraints):
                ca = value.ca
            elif isinstance(value, x509.SubjectKeyIdentifier):
                ski = value.key_identifier
            elif isinstance(value, x509.AuthorityKeyIdentifier):
                aki = value.key_identifier
        return cls(
            certificate,
            der,
            certificate.issuer.public_bytes(),
            certificate.subject.public_bytes(),
            ca,
            ski,
            aki,
        )

    @property
    def self_issued(self) -> bool:
        """Subject and issuer are the same name."""
        return self.subject == self.issuer

    def tie_break(self) -> tuple[float, bytes]:
        """Sort key among equals: later notBefore first, then the smaller SHA-256 fingerprint."""
        return (
            -self.certificate.not_valid_before_utc.timestamp(),
            hashlib.sha256(self.der).digest(),
        )


# The same few intermediates and roots arrive with every order of an account (a batch of many
# orders repeats them thousands of times), so what was read from a CA certificate is kept, keyed by
# its DER: loading it again skips both cryptography's parse and the DER walk.  End entities are
# unique per order and are never kept.  Bounded: the oldest entry goes when the cache is full.
# PEM bodies are keyed too (their base64, as written or without whitespace), so a known CA block
# skips even the base64 decode.
_CA_FACTS: dict[bytes, Facts] = {}
_CA_FACTS_BY_BASE64: dict[bytes, Facts] = {}
_CA_FACTS_MAX = 128


def _bounded_put(cache: dict[bytes, Facts], key: bytes, facts: Facts) -> None:
    while len(cache) >= _CA_FACTS_MAX:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):  # pragma: no cover - another thread won
            break
    cache[key] = facts


def _remember_ca(facts: Facts) -> None:
    _bounded_put(_CA_FACTS, facts.der, facts)


def clear_ca_cache() -> None:
    """Forget every cached CA certificate (benchmarks measure the cold path with it)."""
    _CA_FACTS.clear()
    _CA_FACTS_BY_BASE64.clear()


def known_ca_base64(base64_body: bytes) -> Facts | None:
    """The cached CA certificate whose DER encodes to exactly this base64.

    Args:
        base64_body: A PEM block's base64, as written or with whitespace removed.

    Returns:
        Its facts (certificate and DER included), or None.
    """
    return _CA_FACTS_BY_BASE64.get(base64_body)


def remember_ca_base64(base64_body: bytes, der: bytes) -> None:
    """Key a cached CA certificate by its PEM base64 too, when the DER is cached.

    Args:
        base64_body: The PEM block's base64 (only base64 and whitespace), as the lookup will
            see it.
        der: What it decodes to.
    """
    facts = _CA_FACTS.get(der)
    if facts is not None:
        _bounded_put(_CA_FACTS_BY_BASE64, base64_body, facts)


def known_ca_certificate(der: bytes) -> x509.Certificate | None:
    """A CA certificate already loaded from exactly these bytes, if it is still cached.

    Args:
        der: A certificate's DER encoding.

    Returns:
        The same (immutable) certificate object loaded before, or None.
    """
    facts = _CA_FACTS.get(der)
    return None if facts is None else facts.certificate


def signature_check(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether ``parent``'s key made ``child``'s signature.

    Tries ``verify_directly_issued_by`` first and falls back to a direct check with the public key,
    because cryptography refuses SHA-1 RSA signatures there ("Unsupported signature algorithm")
    while old roots such as "AAA Certificate Services" still carry one (DOMAIN.md).

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
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except UnsupportedAlgorithm:
        return None
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def common_name(certificate: x509.Certificate) -> str:
    """The subject's CN, or the whole subject when it has none (for messages and repr)."""
    try:
        with warnings.catch_warnings():
            # Building a Name can warn (a country code that is not 2 characters): a message or a
            # repr must neither warn nor, under -W error, raise.
            warnings.simplefilter("ignore")
            names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names:
                value = names[0].value
                return value if isinstance(value, str) else value.decode("utf-8", "replace")
            return certificate.subject.rfc4514_string() or "<empty subject>"
    except ValueError:
        # cryptography parses names on first access; a malformed one must not break a message.
        digest = certificate.fingerprint(hashes.SHA256()).hex()[:16]
        return f"<malformed subject, SHA-256 {digest}...>"


def issuer_common_name(certificate: x509.Certificate) -> str:
    """The issuer's CN, or "its issuer" when it has none or cannot be parsed."""
    try:
        names = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return "its issuer"
    return str(names[0].value) if names else "its issuer"


def email_addresses(certificate: x509.Certificate) -> tuple[str, ...]:
    """The e-mail addresses a certificate names: rfc822Name SANs, then subject emailAddress values.

    Malformed extensions and names (cryptography parses them on first access) give no address
    rather than an error: a report about a certificate must not fail on the certificate.
    """
    found: list[str] = []
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        found.extend(san.value.get_values_for_type(x509.RFC822Name))
    except (
        x509.ExtensionNotFound,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
        ValueError,
    ):
        pass
    try:
        attributes = certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    except ValueError:
        attributes = []
    for attribute in attributes:
        value = attribute.value
        found.append(value if isinstance(value, str) else value.decode("ascii", "replace"))
    return tuple(dict.fromkeys(found))


def rfc4514(certificate: x509.Certificate, which: str) -> str:
    """The certificate's ``subject`` or ``issuer`` as an RFC 4514 string, tolerating a bad name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # see common_name
            name: x509.Name = getattr(certificate, which)
            return name.rfc4514_string()
    except ValueError:
        return f"<malformed {which}>"
