"""SANS-I/O: the certificates inside the two ASN.1 wrappers cryptography has no loader for.

The Netscape Certificate Sequence (responseType 1) and CMMF / CMP ``CertRepContent`` (responseType
4) are taken apart with the strict reader of :mod:`smime_collect._certs._der`
(``docs/explanation/formats.md``, "Why our own DER reader").  Nothing is parsed here: each
function returns every certificate's DER with the name messages give it, for the loader to hand to
cryptography.
"""

from __future__ import annotations

from .._exceptions import CertificateFormatError
from ._der import Element

__all__ = ["OID_NETSCAPE_CERT_SEQUENCE", "cmmf_certificates", "netscape_certificates"]

OID_NETSCAPE_CERT_SEQUENCE = bytes.fromhex("6086480186f8420205")  # 2.16.840.1.113730.2.5

# Each certificate's DER, with what to call it in a message.
Found = list[tuple[bytes, str]]


def netscape_certificates(children: tuple[Element, ...], source: str) -> Found:
    """``SEQUENCE { OID 2.16.840.1.113730.2.5, [0] EXPLICIT SEQUENCE OF Certificate }``.

    Args:
        children: The elements of the outer SEQUENCE (the OID first).
        source: What holds it, for messages.

    Returns:
        The certificates.

    Raises:
        CertificateFormatError: The wrapper is malformed or holds no certificate.
        DERError: An element inside is malformed.
    """
    what = f"{source}: Netscape Certificate Sequence"
    if len(children) == 1:
        raise CertificateFormatError(f"{what} holds no certificates")
    wrapper = children[1]
    if len(children) > 2 or wrapper.tag != 0xA0:
        raise CertificateFormatError(f"{what} has a {wrapper.name} where [0] was expected")
    inner = wrapper.children()
    if len(inner) != 1 or inner[0].tag != 0x30:
        raise CertificateFormatError(f"{what}: [0] does not hold one SEQUENCE OF Certificate")
    return _sequence_of_certificates(inner[0].children(), what)


def cmmf_certificates(children: tuple[Element, ...], source: str) -> Found:
    """CMMF / CMP ``CertRepContent``, in EXPLICIT (RFC 4210) or IMPLICIT (NSS) tagging.

    ``caPubs [1]``: EXPLICIT wraps one ``SEQUENCE OF Certificate``; IMPLICIT replaces that
    SEQUENCE's tag, so ``[1]`` directly holds the certificates.  ``certificate [0]`` of
    ``CertOrEncCert``: EXPLICIT wraps the Certificate; IMPLICIT replaces its tag (NSS rewrites
    the ``A0`` byte to ``30`` before decoding, which is what happens here).

    Args:
        children: The elements of ``CertRepContent`` (``[1] caPubs`` or the response SEQUENCE
            first).
        source: What holds it, for messages.

    Returns:
        The CA certificates, then the issued ones.

    Raises:
        CertificateFormatError: The structure is malformed, holds an encrypted certificate, or
            holds no certificate.
        DERError: An element inside is malformed.
    """
    what = f"{source}: CMMF CertRepContent"
    found: Found = []
    if children[0].tag == 0xA1:
        ca_pubs, *rest = children
        items = ca_pubs.children()
        if len(items) == 1 and items[0].tag == 0x30 and not _is_certificate(items[0]):
            items = items[0].children()  # EXPLICIT: [1] { SEQUENCE OF Certificate }
        found += _sequence_of_certificates(items, f"{what} caPubs")
    else:
        rest = list(children)
    if len(rest) != 1 or rest[0].tag != 0x30:
        raise CertificateFormatError(f"{what} has no response SEQUENCE")
    for number, response in enumerate(rest[0].children(), 1):
        der = _issued_certificate(response, f"{what}: CertResponse {number}")
        if der is not None:
            found.append((der, f"{what} response {number}"))
    if not found:
        raise CertificateFormatError(f"{what} holds no certificates")
    return found


def _issued_certificate(response: Element, what: str) -> bytes | None:
    """The certificate DER of one ``CertResponse``, or None when it carries none."""
    # CertResponse ::= SEQUENCE { certReqId INTEGER, status PKIStatusInfo,
    #     certifiedKeyPair CertifiedKeyPair OPTIONAL, rspInfo OCTET STRING OPTIONAL }
    fields = response.children() if response.tag == 0x30 else ()
    if len(fields) < 2 or fields[0].tag != 0x02 or fields[1].tag != 0x30:
        raise CertificateFormatError(f"{what} is malformed")
    key_pair = fields[2] if len(fields) > 2 and fields[2].tag == 0x30 else None
    if key_pair is None:
        return None  # no certificate in this response (e.g. a rejection's status only)
    key_pair_fields = key_pair.children()
    choice = key_pair_fields[0] if key_pair_fields else None
    if choice is not None and choice.tag == 0xA1:
        raise CertificateFormatError(
            f"{what} holds an encryptedCert [1], which needs the requester's private key "
            "to decrypt; ask for PKCS7 or PEM instead"
        )
    if choice is None or choice.tag != 0xA0:
        raise CertificateFormatError(f"{what} has no certificate [0]")
    inner = choice.children()
    if len(inner) == 1 and inner[0].tag == 0x30:  # EXPLICIT: [0] { Certificate }
        return inner[0].encoded
    return b"\x30" + choice.encoded[1:]  # IMPLICIT: the Certificate with its tag replaced


def _sequence_of_certificates(items: tuple[Element, ...], what: str) -> Found:
    if not items:
        raise CertificateFormatError(f"{what} holds no certificates")
    return [(item.encoded, what) for item in items]


def _is_certificate(element: Element) -> bool:
    """Whether a SEQUENCE is shaped like a Certificate: SEQUENCE, SEQUENCE, BIT STRING."""
    children = element.children()
    return len(children) == 3 and [c.tag for c in children] == [0x30, 0x30, 0x03]
