"""SANS-I/O: names and e-mail addresses for messages, reprs and reports, read from the DER.

cryptography builds a ``Name`` on every access to ``certificate.subject``, and building one can warn
(a country code that is not two characters, a common name over 64 characters) or, before
cryptography 50, raise a bare KeyError for a value of an unknown string type
(pyca/cryptography#15076).  Silencing the warning takes ``warnings.catch_warnings()``, which swaps
process-wide state and is not thread-safe before Python 3.14, and these names are wanted from any
thread (the command line writes ``meta.json`` from a worker thread).  So nothing here touches
cryptography's name objects: names are read from the DER by :mod:`smime_collect._certs._x509` and
written as cryptography writes them (RFC 4514 section 2), which the tests check against
cryptography on many names.
"""

from __future__ import annotations

import contextlib
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ._der import DERError, Element, read_single
from ._x509 import OID_SUBJECT_ALT_NAME, TBSParts, read_tbs

__all__ = ["common_name", "email_addresses", "issuer_common_name", "rfc4514"]

_OID_COMMON_NAME = b"\x55\x04\x03"  # 2.5.4.3
_OID_EMAIL_ADDRESS = b"\x2a\x86\x48\x86\xf7\x0d\x01\x09\x01"  # 1.2.840.113549.1.9.1
_OID_UNIQUE_IDENTIFIER = b"\x55\x04\x2d"  # 2.5.4.45, the one attribute a BIT STRING may hold

# The short names RFC 4514 section 3 gives (and cryptography writes); other types are dotted.
_SHORT_NAMES = {
    b"\x55\x04\x03": "CN",
    b"\x55\x04\x07": "L",
    b"\x55\x04\x08": "ST",
    b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU",
    b"\x55\x04\x06": "C",
    b"\x55\x04\x09": "STREET",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19": "DC",  # 0.9.2342.19200300.100.1.25
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01": "UID",  # 0.9.2342.19200300.100.1.1
}
# The value types cryptography accepts in a name; the others make its Name fail to build.
_BIT_STRING, _BMP_STRING, _UNIVERSAL_STRING = 0x03, 0x1E, 0x1C
_VALUE_TAGS = frozenset({0x03, 0x04, 0x0C, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1A, 0x1C, 0x1E})
# RFC 4514 section 2.4: what a value escapes with a backslash.
_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "+": "\\+", ",": "\\,", ";": "\\;", "<": "\\<", ">": "\\>"}
    | {"\0": "\\00"}
)

Attribute = tuple[bytes, str | bytes]  # (the type's OID content octets, the value)


def rfc4514(certificate: x509.Certificate, which: Literal["subject", "issuer"]) -> str:
    """The certificate's subject or issuer as an RFC 4514 string, as cryptography writes it.

    Args:
        certificate: Any certificate.
        which: ``"subject"`` or ``"issuer"``.

    Returns:
        The string (``CN=Alice,O=Example,C=GB``), or ``<malformed subject>`` when the name
        cannot be read.
    """
    try:
        return _rfc4514_string(_name_attributes(_name(_tbs(certificate), which)))
    except ValueError:  # DERError and UnicodeDecodeError included
        return f"<malformed {which}>"


def common_name(certificate: x509.Certificate) -> str:
    """The subject's first CN, or the whole subject when it has none (for messages and repr).

    Args:
        certificate: Any certificate.

    Returns:
        The name; a malformed subject gives a placeholder naming the certificate's fingerprint.
    """
    try:
        rdns = _name_attributes(_name(_tbs(certificate), "subject"))
    except ValueError:
        digest = certificate.fingerprint(hashes.SHA256()).hex()[:16]
        return f"<malformed subject, SHA-256 {digest}...>"
    for value in _values(rdns, _OID_COMMON_NAME):
        return value
    return _rfc4514_string(rdns) or "<empty subject>"


def issuer_common_name(certificate: x509.Certificate) -> str:
    """The issuer's first CN, or "its issuer" when it has none or cannot be read.

    Args:
        certificate: Any certificate.

    Returns:
        The name.
    """
    try:
        rdns = _name_attributes(_name(_tbs(certificate), "issuer"))
    except ValueError:
        return "its issuer"
    return next(iter(_values(rdns, _OID_COMMON_NAME)), "its issuer")


def email_addresses(certificate: x509.Certificate) -> tuple[str, ...]:
    """The e-mail addresses a certificate names: rfc822Name SANs, then subject emailAddress values.

    A malformed subjectAltName or subject gives no address from it rather than an error: a report
    about a certificate must not fail on the certificate.

    Args:
        certificate: Any certificate.

    Returns:
        The addresses, each once, in that order.
    """
    tbs = _tbs(certificate)
    found = _san_emails(tbs)
    with contextlib.suppress(ValueError):
        found += _values(_name_attributes(tbs.subject.encoded), _OID_EMAIL_ADDRESS)
    return tuple(dict.fromkeys(found))


def _tbs(certificate: x509.Certificate) -> TBSParts:
    return read_tbs(certificate.tbs_certificate_bytes)


def _name(tbs: TBSParts, which: Literal["subject", "issuer"]) -> bytes:
    return (tbs.subject if which == "subject" else tbs.issuer).encoded


def _san_emails(tbs: TBSParts) -> list[str]:
    """The rfc822Name entries of the first subjectAltName; none when it is malformed."""
    value = next((value for oid, value in tbs.extensions if oid == OID_SUBJECT_ALT_NAME), None)
    if value is None:
        return []
    try:
        names = read_single(value).children()  # GeneralNames ::= SEQUENCE OF GeneralName
        # rfc822Name [1] IMPLICIT IA5String (RFC 5280 section 4.2.1.6)
        return [name.content.decode("ascii") for name in names if name.tag == 0x81]
    except ValueError:
        return []


def _name_attributes(name: bytes) -> list[list[Attribute]]:
    """The RDNs of a Name, each a list of (type, value), in encoded order.

    Raises:
        ValueError: Anything cryptography would refuse to build a Name from.
    """
    # Name ::= SEQUENCE OF RelativeDistinguishedName ::= SET OF AttributeTypeAndValue
    rdns: list[list[Attribute]] = []
    for rdn in read_single(name).children():
        attributes = [_attribute(element) for element in rdn.children()]
        if rdn.tag != 0x31 or not attributes or len(set(attributes)) != len(attributes):
            raise DERError(f"a malformed RelativeDistinguishedName at offset {rdn.start}")
        rdns.append(attributes)
    return rdns


def _attribute(element: Element) -> Attribute:
    # AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }
    parts = element.children()
    if len(parts) != 2 or parts[0].tag != 0x06 or parts[1].tag not in _VALUE_TAGS:
        raise DERError(f"a malformed AttributeTypeAndValue at offset {element.start}")
    oid, value = parts[0].content, parts[1]
    if value.tag == _BIT_STRING:
        if oid != _OID_UNIQUE_IDENTIFIER or not value.content:
            raise DERError("a BIT STRING in a name attribute other than x500UniqueIdentifier")
        return oid, value.content  # the unused-bits octet included, as cryptography reads it
    if value.tag == _BMP_STRING:
        return oid, value.content.decode("utf-16-be")
    if value.tag == _UNIVERSAL_STRING:
        return oid, value.content.decode("utf-32-be")
    return oid, value.content.decode("utf-8")


def _values(rdns: list[list[Attribute]], oid: bytes) -> list[str]:
    """The values of every attribute of type ``oid``, in order (text types only hold text)."""
    return [
        value
        for rdn in rdns
        for attribute_type, value in rdn
        if attribute_type == oid and isinstance(value, str)
    ]


def _rfc4514_string(rdns: list[list[Attribute]]) -> str:
    # RFC 4514 section 2.1: the RDNs in reverse order, joined by commas; an RDN's attributes
    # joined by plus signs.
    return ",".join(
        "+".join(f"{_type_name(oid)}={_escaped(value)}" for oid, value in rdn)
        for rdn in reversed(rdns)
    )


def _type_name(oid: bytes) -> str:
    return _SHORT_NAMES.get(oid) or _dotted(oid)


def _dotted(oid: bytes) -> str:
    """An OBJECT IDENTIFIER's content octets as dotted decimal (X.690 section 8.19).

    Only for an OID cryptography has already read (it refuses a certificate with a bad one).
    """
    arcs: list[int] = []
    value = 0
    for octet in oid:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _escaped(value: str | bytes) -> str:
    # RFC 4514 section 2.4, as cryptography applies it.
    if isinstance(value, bytes):
        return "#" + value.hex()
    if not value:
        return ""
    value = value.translate(_ESCAPES)
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value
