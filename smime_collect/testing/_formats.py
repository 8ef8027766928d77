"""Render certificates in every container CollectSMIME can send (pure functions, no I/O).

The simulator uses these to build response bodies and the tests use them to feed
``load_certificates`` every form it must read (``docs/explanation/formats.md``, "The containers"):

=====================================  ==============================================
responseType                           serialiser
=====================================  ==============================================
1 Netscape Certificate Sequence        :func:`to_netscape_sequence_der`
2 PKCS7 (certs-only SignedData)        :func:`to_pkcs7_der` (DER-sorted or input order)
3 individually encoded                 :func:`to_pem_blocks` (optionally the page's sloppy markers)
4 CMMF (CertRepContent)                :func:`to_cmmf_der` (EXPLICIT or IMPLICIT tagging)
base64 encoding / armour               :func:`to_base64`, :func:`to_pem`
CollectSSL responseType 0              :func:`to_zip`
=====================================  ==============================================
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = [
    "der_tlv",
    "to_base64",
    "to_cmmf_der",
    "to_netscape_sequence_der",
    "to_pem",
    "to_pem_blocks",
    "to_pkcs7_der",
    "to_zip",
]

# OIDs, DER-encoded with their tag (RFC 2315 section 14; Netscape certificate sequence).
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_NETSCAPE_CERT_SEQUENCE = bytes.fromhex("06096086480186f8420205")  # 2.16.840.1.113730.2.5


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content.

    Args:
        tag: The identifier octet (e.g. ``0x30`` SEQUENCE, ``0xA0`` [0] constructed).
        content: The content octets.

    Returns:
        The encoded element.
    """
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _der(certificates: Iterable[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in certificates]


def to_base64(der: bytes, *, line_length: int | None = 64) -> bytes:
    """Base64 of binary data, wrapped like PEM bodies or on one line.

    Args:
        der: The bytes to encode.
        line_length: Characters per line (LF-terminated), or None for one line without newline.

    Returns:
        ASCII base64.
    """
    text = base64.b64encode(der)
    if line_length is None:
        return text
    lines = [text[i : i + line_length] for i in range(0, len(text), line_length)]
    return b"".join(line + b"\n" for line in lines)


def to_pem(
    der: bytes,
    label: str = "CERTIFICATE",
    *,
    sloppy_markers: bool = False,
    last: bool = True,
    crlf: bool = False,
) -> bytes:
    """Armour binary data as one PEM block.

    Args:
        der: The binary structure.
        label: The PEM label (``CERTIFICATE``, ``PKCS7``, ...).
        sloppy_markers: Use the endpoint page's markers, ``----- BEGIN X -----``; with ``last``
            the END line has four leading dashes, as the page prints for its last block.
        last: Whether this is the last block (only matters with ``sloppy_markers``).
        crlf: End lines with CRLF instead of LF.

    Returns:
        The PEM block.
    """
    if sloppy_markers:
        begin = f"----- BEGIN {label} -----"
        end = f"{'----' if last else '-----'} END {label} -----"
    else:
        begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    lines = [begin.encode(), *to_base64(der).splitlines(), end.encode()]
    newline = b"\r\n" if crlf else b"\n"
    return b"".join(line + newline for line in lines)


def to_pem_blocks(
    certificates: Sequence[x509.Certificate], *, sloppy_markers: bool = False, crlf: bool = False
) -> bytes:
    """Concatenated PEM certificates: responseType 3, "individually encoded".

    Args:
        certificates: The certificates, in the order to write them.
        sloppy_markers: Reproduce the endpoint page's sample markers (``----- BEGIN CERTIFICATE
            -----`` and a four-dash END line on the last block).
        crlf: End lines with CRLF.

    Returns:
        The PEM text as bytes.
    """
    ders = _der(certificates)
    return b"".join(
        to_pem(der, sloppy_markers=sloppy_markers, last=i == len(ders) - 1, crlf=crlf)
        for i, der in enumerate(ders)
    )


def _der_set_order(elements: list[bytes]) -> list[bytes]:
    # X.690 section 11.6: a DER SET OF sorts its encodings as octet strings, the shorter one
    # padded with trailing zero octets.
    width = max((len(e) for e in elements), default=0)
    return sorted(elements, key=lambda e: e.ljust(width, b"\x00"))


def to_pkcs7_der(certificates: Sequence[x509.Certificate], *, sorted: bool = True) -> bytes:  # noqa: A002
    """A certs-only PKCS#7 SignedData (RFC 2315 section 9.1): responseType 2.

    Args:
        certificates: The certificates to carry.
        sorted: Sort the ``certificates`` SET as DER requires (what cryptography writes); False
            keeps input order, like OpenSSL's ``crl2pkcs7 -nocrl`` (which cryptography loads with
            a UserWarning).

    Returns:
        The DER (or, unsorted, DER-like) ContentInfo.
    """
    ders = _der(certificates)
    if sorted:
        ders = _der_set_order(ders)
    signed_data = der_tlv(
        0x30,
        der_tlv(0x02, b"\x01")  # version 1
        + der_tlv(0x31, b"")  # digestAlgorithms: none
        + der_tlv(0x30, _OID_DATA)  # contentInfo: data, no content
        + der_tlv(0xA0, b"".join(ders))  # certificates [0] IMPLICIT SET OF
        + der_tlv(0x31, b""),  # signerInfos: none
    )
    return der_tlv(0x30, _OID_SIGNED_DATA + der_tlv(0xA0, signed_data))


def to_netscape_sequence_der(certificates: Sequence[x509.Certificate]) -> bytes:
    """A Netscape Certificate Sequence: responseType 1.

    ``SEQUENCE { OID 2.16.840.1.113730.2.5, [0] EXPLICIT SEQUENCE OF Certificate }``, as
    OpenSSL's ``nseq -toseq`` writes it.

    Args:
        certificates: The certificates, in the order to write them.

    Returns:
        The DER structure.
    """
    inner = der_tlv(0x30, b"".join(_der(certificates)))
    return der_tlv(0x30, _OID_NETSCAPE_CERT_SEQUENCE + der_tlv(0xA0, inner))


def to_cmmf_der(
    ca_certificates: Sequence[x509.Certificate],
    end_entity: x509.Certificate | None,
    *,
    tagging: Literal["explicit", "implicit"] = "explicit",
    cert_request_id: int = 0,
) -> bytes:
    """A CMMF / CMP ``CertRepContent``: responseType 4.

    ::

        CertRepContent ::= SEQUENCE {
            caPubs    [1] SEQUENCE SIZE (1..MAX) OF Certificate OPTIONAL,
            response      SEQUENCE OF CertResponse }
        CertResponse ::= SEQUENCE { certReqId INTEGER, status PKIStatusInfo,
                                    certifiedKeyPair CertifiedKeyPair OPTIONAL }
        CertifiedKeyPair ::= SEQUENCE { certOrEncCert CHOICE { certificate [0] Certificate, ... } }

    RFC 4210's module uses EXPLICIT tags; NSS and the CMMF draft use IMPLICIT ones (``[1]`` replaces
    the SEQUENCE tag of caPubs, ``[0]`` the SEQUENCE tag of the certificate).

    Args:
        ca_certificates: The CA certificates for ``caPubs`` (omitted when empty).
        end_entity: The issued certificate, or None for a response without one.
        tagging: ``"explicit"`` (RFC 4210) or ``"implicit"`` (NSS).
        cert_request_id: The ``certReqId`` to echo.

    Returns:
        The DER structure.
    """
    explicit = tagging == "explicit"
    body = b""
    if ca_certificates:
        certs = b"".join(_der(ca_certificates))
        body += der_tlv(0xA1, der_tlv(0x30, certs) if explicit else certs)
    size = cert_request_id.bit_length() // 8 + 1  # room for the sign bit
    response = der_tlv(0x02, cert_request_id.to_bytes(size, "big", signed=True))
    response += der_tlv(0x30, der_tlv(0x02, b"\x00"))  # PKIStatusInfo: granted (0)
    if end_entity is not None:
        der = end_entity.public_bytes(Encoding.DER)
        cert_choice = der_tlv(0xA0, der) if explicit else b"\xa0" + der[1:]
        response += der_tlv(0x30, cert_choice)
    body += der_tlv(0x30, der_tlv(0x30, response))
    return der_tlv(0x30, body)


def to_zip(members: Mapping[str, bytes]) -> bytes:
    """A ZIP archive (CollectSSL's responseType 0), built in memory with fixed timestamps.

    Args:
        members: File name to content, in archive order.

    Returns:
        The archive bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
