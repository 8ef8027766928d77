"""SANS-I/O: the certificate fields classification and reports need, read with the strict reader.

Classification needs a certificate's issuer and subject as DER bytes (compared byte for byte, as
OpenSSL's ``X509_NAME_cmp`` compares canonical encodings) and three extensions (RFC 5280 section
4.2.1): basicConstraints, subjectKeyIdentifier and authorityKeyIdentifier.  Reports need the names
and the subjectAltName.  Reading them through cryptography's objects builds ``Name`` and extension
objects, which can warn (a country code that is not two characters) or, before cryptography 50,
raise a bare KeyError (pyca/cryptography#15076); an unrelated malformed extension also makes
``certificate.extensions`` fail as a whole.  So they are read here from the DER, with
:mod:`smime_collect._certs._der`, which checks every length.

``_fast`` reads the same fields with an unchecked inline walk; the two are compared on every
certificate the tests load with the shortcuts on and off.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from cryptography import x509

from ._der import Element, read_single

__all__ = [
    "TBS_FIRST_TAGS",
    "Fields",
    "TBSParts",
    "read_fields",
    "read_tbs",
    "serial_number",
    "unreadable_fields",
]

# A TBSCertificate opens with [0] version, or with the serial INTEGER of a v1 certificate.
TBS_FIRST_TAGS = (b"\xa0", b"\x02")

# The DER of the extension OIDs, RFC 5280 section 4.2.1 (id-ce = 2.5.29).
OID_BASIC_CONSTRAINTS = b"\x55\x1d\x13"  # 2.5.29.19
OID_SUBJECT_KEY_IDENTIFIER = b"\x55\x1d\x0e"  # 2.5.29.14
OID_AUTHORITY_KEY_IDENTIFIER = b"\x55\x1d\x23"  # 2.5.29.35
OID_SUBJECT_ALT_NAME = b"\x55\x1d\x11"  # 2.5.29.17


class Fields(NamedTuple):
    """What classification reads from one certificate.

    Attributes:
        issuer: The issuer Name, as its DER encoding.
        subject: The subject Name, as its DER encoding.
        ca: The cA flag of basicConstraints; None when the extension is absent.
        ski: The subjectKeyIdentifier, or None.
        aki: The keyIdentifier of authorityKeyIdentifier, or None.
    """

    issuer: bytes
    subject: bytes
    ca: bool | None
    ski: bytes | None
    aki: bytes | None


class TBSParts(NamedTuple):
    """The parts of a TBSCertificate that are read here.

    Attributes:
        issuer: The issuer Name.
        subject: The subject Name.
        extensions: ``(extnID content, extnValue content)`` of each extension, in order.
    """

    issuer: Element
    subject: Element
    extensions: tuple[tuple[bytes, bytes], ...]


def read_tbs(tbs: bytes) -> TBSParts:
    """Take apart a TBSCertificate cryptography has loaded (RFC 5280 section 4.1).

    cryptography checks this structure when it loads a certificate, down to each Extension's
    ``extnID``, ``critical`` and ``extnValue``; what a name or an extnValue holds it reads only
    when asked, and so do the callers here.

    Args:
        tbs: The DER of the TBSCertificate (``certificate.tbs_certificate_bytes``).

    Returns:
        Its names and extensions.
    """
    # TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
    #     validity, subject, subjectPublicKeyInfo, [1] and [2] unique IDs OPTIONAL,
    #     [3] extensions OPTIONAL }
    fields = read_single(tbs).children()
    first = 1 if fields[0].tag == 0xA0 else 0
    extensions: list[tuple[bytes, bytes]] = []
    for field in fields[first + 6 :]:
        if field.tag == 0xA3:
            for extension in field.children()[0].children():
                # Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }
                parts = extension.children()
                extensions.append((parts[0].content, parts[-1].content))
    return TBSParts(fields[first + 2], fields[first + 4], tuple(extensions))


def read_fields(der: bytes) -> Fields:
    """Read names and key identifiers from the DER of a certificate cryptography has loaded.

    An extension that appears twice (RFC 5280 section 4.2 forbids it) counts once: the first.

    Args:
        der: The certificate's DER.

    Returns:
        The fields.

    Raises:
        DERError: The value of one of the three extensions is malformed.
    """
    parts = read_tbs(read_single(der).children()[0].encoded)
    first: dict[bytes, bytes] = {}
    for oid, content in parts.extensions:
        first.setdefault(oid, content)
    ca: bool | None = None
    ski: bytes | None = None
    aki: bytes | None = None
    if (value := first.get(OID_BASIC_CONSTRAINTS)) is not None:
        # BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER OPTIONAL }
        inside = read_single(value).children()
        ca = bool(inside) and inside[0].tag == 0x01 and inside[0].content[:1] not in (b"", b"\0")
    if (value := first.get(OID_SUBJECT_KEY_IDENTIFIER)) is not None:
        ski = read_single(value).content  # SubjectKeyIdentifier ::= OCTET STRING
    if (value := first.get(OID_AUTHORITY_KEY_IDENTIFIER)) is not None:
        # AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL,
        #     authorityCertIssuer [1] OPTIONAL, authorityCertSerialNumber [2] OPTIONAL }
        inside = read_single(value).children()
        if inside and inside[0].tag == 0x80:
            aki = inside[0].content
    return Fields(parts.issuer.encoded, parts.subject.encoded, ca, ski, aki)


def serial_number(certificate: x509.Certificate) -> int:
    """The serial number, read without cryptography's warning about a negative or zero one.

    ``certificate.serial_number`` warns (CryptographyDeprecationWarning) for the serials some old
    CAs issued against RFC 5280 section 4.1.2.2; reports read it from any thread, where silencing
    a warning is not safe.

    Args:
        certificate: Any certificate.

    Returns:
        The serial number, negative ones included.
    """
    fields = read_single(certificate.tbs_certificate_bytes).children()
    serial = fields[1] if fields[0].tag == 0xA0 else fields[0]
    return int.from_bytes(serial.content, "big", signed=True)


def unreadable_fields(der: bytes) -> Fields:
    """Fields for a certificate whose own DER cannot be read: names that link to nothing.

    Args:
        der: The certificate's DER.

    Returns:
        An issuer and a subject unique to these bytes and different from each other, no
        extensions.
    """
    token = hashlib.sha256(der).digest()
    return Fields(b"issuer?" + token, b"subject?" + token, None, None, None)
