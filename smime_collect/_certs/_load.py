"""SANS-I/O: certificate data in any CollectSMIME format, into a classified chain.

:func:`load_certificates` sniffs the format itself (DOMAIN.md, "The containers"):

======================  =========================================================================
what arrives            how it is read
======================  =========================================================================
ZIP (starts ``PK``)     every member loaded as below; members without certificates are skipped
DER / BER ``SEQUENCE``  by structure: a Certificate, a PKCS#7 ``ContentInfo``, a Netscape
                        Certificate Sequence or a CMMF ``CertRepContent``
PEM (tolerant markers)  each block's base64 decoded, then read as DER above, whatever its label
                        (OpenSSL labels a Netscape sequence ``CERTIFICATE``)
bare base64             decoded, then read as DER (or ZIP) above
======================  =========================================================================

Every certificate and PKCS#7 structure is parsed by cryptography; the two wrappers it has no
loader for are taken apart with the strict reader in :mod:`smime_collect._der`; ZIP archives
are opened by :mod:`smime_collect._zip`.  The work is bounded: input size, PEM blocks,
certificates, ASN.1 depth and ZIP size/entries all have caps.

Plain standard PEM (only ``CERTIFICATE`` blocks) takes a shortcut that reads exactly what the
tolerant scanner reads, in a fraction of its time (``benchmarks/bench_certs.py``).
"""

from __future__ import annotations

import binascii
import contextlib
import re
import warnings
from collections.abc import Iterator

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.utils import CryptographyDeprecationWarning

from .._exceptions import CertificateFormatError
from ._chain import CertificateChain, classify
from ._der import DERError, Element, read_element, read_header
from ._facts import known_ca_base64, known_ca_certificate, remember_ca_base64
from ._pem import (
    WHITESPACE,
    PemBlockName,
    decode_base64,
    find_begin,
    find_end_marker,
    standard_certificate_bodies,
    strip_pem_headers,
)
from ._zip import ZIP_MAGIC, load_zip_members

__all__ = ["CertificateChain", "load_certificates"]

MiB = 1024 * 1024
# Sanity caps.  A CollectSMIME body is a few KiB; the client refuses bodies over 4 MiB.  These leave
# room for large CA bundles given to `smime-collect inspect` while bounding every loop and buffer.
MAX_INPUT_BYTES = 64 * MiB
MAX_PEM_BLOCKS = 1024
MAX_CERTIFICATES = 4096
DEFAULT_MAX_ZIP_SIZE = 16 * MiB
DEFAULT_MAX_ZIP_ENTRIES = 256

_OID_PKCS7 = bytes.fromhex("2a864886f70d0107")  # 1.2.840.113549.1.7 (RFC 2315 section 14)
_OID_SIGNED_DATA = _OID_PKCS7 + b"\x02"
_PKCS7_TYPES = {1: "data", 3: "envelopedData", 4: "signedAndEnvelopedData", 5: "digestedData"}
_OID_NETSCAPE_CERT_SEQUENCE = bytes.fromhex("6086480186f8420205")  # 2.16.840.1.113730.2.5

_TRAILING = WHITESPACE + b"\x00"
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
# Labels whose blocks must hold certificates; other blocks (keys, CRLs, requests) are skipped.
_CERTIFICATE_LABELS = re.compile(rb"CERTIFICATE|PKCS ?#?7|CMS|CERTS|CHAIN|SEQUENCE|CMMF|CMP")
_TBS_STARTS = (b"\xa0", b"\x02")
_PKCS7_NOT_DER_WARNING = "PKCS#7 certificates could not be parsed as DER"

_Loaded = list[tuple[x509.Certificate, bytes]]


def load_certificates(
    data: bytes | str,
    *,
    max_zip_size: int = DEFAULT_MAX_ZIP_SIZE,
    max_zip_entries: int = DEFAULT_MAX_ZIP_ENTRIES,
) -> CertificateChain:
    """Load certificate data in any format CollectSMIME sends, and classify it.

    Accepts PEM (one or many blocks, any label, LF or CRLF, text around the blocks, the sloppy
    markers of Sectigo's documentation), bare base64, a DER certificate, PKCS#7 certs-only
    SignedData (DER or BER, sorted or not), a Netscape Certificate Sequence, CMMF / CMP
    ``CertRepContent`` in EXPLICIT or IMPLICIT tagging, a ZIP of any of these, and several of them
    one after the other.  Input order carries no meaning.

    Args:
        data: The certificate data, as received.
        max_zip_size: Refuse a ZIP whose members unpack to more bytes than this.
        max_zip_entries: Refuse a ZIP with more entries than this.

    Returns:
        The certificates, classified into end entity, intermediates and roots.

    Raises:
        CertificateFormatError: Empty input, or data that is none of the above; the message
            names what was seen.
        TypeError: ``data`` is neither bytes nor str.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogateescape")
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise TypeError(f"certificate data must be bytes or str, not {type(data).__name__}")
    if len(raw) > MAX_INPUT_BYTES:
        raise CertificateFormatError(
            f"{len(raw)} bytes of certificate data is more than the {MAX_INPUT_BYTES} accepted"
        )
    if not raw or raw.isspace():  # (strip() would copy the whole input)
        raise CertificateFormatError("no certificate data: the input is empty")
    loader = _Loader(max_zip_size=max_zip_size, max_zip_entries=max_zip_entries)
    certificates = loader.load(raw, "input", allow_zip=True)
    if not certificates:  # pragma: no cover - every loader raises before returning nothing
        raise CertificateFormatError("no certificate found in the input")
    return classify(certificates)


@attrs.define
class _Loader:
    """One load: the caps, and how many certificates were loaded so far."""

    max_zip_size: int
    max_zip_entries: int
    count: int = 0

    def load(self, raw: bytes, where: object, *, allow_zip: bool) -> _Loaded:
        """Any supported form; ``where`` names the source in error messages."""
        if raw.startswith(ZIP_MAGIC):
            if not allow_zip:
                raise CertificateFormatError(f"{where} is a ZIP inside a ZIP, which is not read")
            return self.load_zip(raw, where)
        if raw[:1] == b"0":
            # DER starts with 0x30, which is ASCII "0" (DOMAIN.md): look at the structure.
            try:
                return self.load_binary(raw, where)
            except CertificateFormatError:
                if not raw.isascii() or find_begin(raw, 0) is None:
                    raise
        elif _looks_binary(raw) and find_begin(raw, 0) is None:
            return self.load_binary(raw, where)
        return self.load_text(raw, where, allow_zip=allow_zip)

    # -- text -----------------------------------------------------------------------------------

    def load_text(self, raw: bytes, where: object, *, allow_zip: bool) -> _Loaded:
        """PEM blocks, or failing any marker, bare base64."""
        bodies = standard_certificate_bodies(raw, MAX_PEM_BLOCKS)
        if bodies is not None:
            standard = self.load_standard_pem(bodies)
            if standard is not None:
                return standard
        loaded: _Loaded = []
        labels: list[bytes] = []
        position, number = 0, 0
        while (match := find_begin(raw, position)) is not None:
            number += 1
            if number > MAX_PEM_BLOCKS:
                raise CertificateFormatError(f"{where} has more than {MAX_PEM_BLOCKS} PEM blocks")
            label = match.group(1)
            labels.append(label)
            block = PemBlockName(number, label, where)  # its text is only built for a message
            end = find_end_marker(raw, match.end())
            if end is None:
                raise CertificateFormatError(f"{block} is truncated: no END line")
            line_end = raw.find(b"\n", end)
            position = len(raw) if line_end < 0 else line_end + 1
            body = raw[match.end() : end]
            if b":" in body:
                body = strip_pem_headers(body)
            compact = body.translate(None, WHITESPACE)
            known = known_ca_base64(compact)
            if known is not None:  # a CA seen before: no need to decode or parse it again
                self.count_certificates(1, block)
                loaded.append((known.certificate, known.der))
                continue
            try:
                der = decode_base64(compact, block)
                found = self.load_armoured(der, block, allow_zip=allow_zip)
            except CertificateFormatError:
                if not label or _CERTIFICATE_LABELS.search(label.upper()):
                    raise
                continue
            if len(found) == 1 and found[0][1] is der:
                remember_ca_base64(compact, der)
            loaded += found
        if number == 0:  # no BEGIN line anywhere
            return self.load_base64(raw, where, allow_zip=allow_zip)
        if not loaded:
            names = ", ".join(label.decode("ascii", "replace") for label in labels)
            raise CertificateFormatError(
                f"{where} holds no certificate, only PEM blocks labelled {names}"
            )
        return loaded

    def load_armoured(self, der: bytes, block: object, *, allow_zip: bool) -> _Loaded:
        """What one PEM block holds: "the armour may wrap any binary form", a ZIP included."""
        if der.startswith(ZIP_MAGIC):
            return self.load(der, block, allow_zip=allow_zip)
        return self.load_binary(der, block)

    def load_standard_pem(self, bodies: list[bytes]) -> _Loaded | None:
        """Standard ``CERTIFICATE`` blocks; None, with nothing counted, when one fails.

        A block that fails is read again by the marker scan, which raises the error that names
        it: this path builds no messages, so it costs nothing on input that loads.

        Why not ``x509.load_pem_x509_certificates`` on the whole text: classification needs each
        certificate's DER, which cryptography does not hand back without re-encoding it
        (``public_bytes`` costs more than decoding the base64 and parsing again).
        """
        count = self.count
        loaded: _Loaded = []
        try:
            for body in bodies:
                # Known CA blocks are keyed by their body as written, line breaks included:
                # the text of a CA's block is the same in every order's response.
                known = known_ca_base64(body)
                if known is not None:
                    loaded.append((known.certificate, known.der))
                    continue
                compact = body.translate(None, WHITESPACE)
                if not compact:
                    break
                der = binascii.a2b_base64(compact, strict_mode=True)
                if _is_one_certificate(der):  # what load_binary would find, without its walk
                    loaded.append((_parse_certificate(der, "", _serial_octet(der, 8)), der))
                    remember_ca_base64(body, der)
                    continue
                before = self.count
                found = self.load_binary(der, "")  # counts what it finds
                self.count = before
                if len(found) == 1 and found[0][1] is der:
                    remember_ca_base64(body, der)
                loaded += found
            else:
                self.count_certificates(len(loaded), "")  # the cap, once for the whole text
                return loaded
        except (binascii.Error, CertificateFormatError):
            pass
        self.count = count
        return None

    def load_base64(self, raw: bytes, where: object, *, allow_zip: bool) -> _Loaded:
        """Bare base64 (with or without line breaks) of any binary form."""
        compact = raw.translate(None, WHITESPACE)
        if not _BASE64.fullmatch(compact):
            sample = raw.strip()[:24].decode("ascii", "backslashreplace")
            raise CertificateFormatError(
                f"{where} is neither PEM, base64 nor DER certificate data "
                f"({len(raw)} bytes starting {sample!r})"
            )
        try:
            der = binascii.a2b_base64(compact, strict_mode=True)
        except binascii.Error as exc:
            raise CertificateFormatError(
                f"{where} is neither PEM nor DER, and not valid base64 either ({exc})"
            ) from None
        if der.startswith(ZIP_MAGIC):
            return self.load(der, f"base64-decoded {where}", allow_zip=allow_zip)
        return self.load_binary(der, where, decoded="base64 decoded to ")

    # -- binary ---------------------------------------------------------------------------------

    def load_binary(self, der: bytes, where: object, *, decoded: str = "") -> _Loaded:
        """One or more consecutive DER/BER structures, trailing whitespace tolerated."""
        if der.startswith(b"\x30\x80"):
            # Indefinite length: only BER PKCS#7 is written that way; cryptography reads BER.
            return self.load_pkcs7(der, where)
        loaded: _Loaded = []
        position = 0
        while position < len(der):
            if der[position] in _TRAILING and not der[position:].strip(_TRAILING):
                break  # a trailing newline or padding after the last structure
            try:
                tag, start, end = read_header(der, position)
                # Fast path: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
                # (or the serial INTEGER of a v1 certificate) ... } }
                if tag == 0x30:
                    inner_tag, inner_start, _ = read_header(der, start, end)
                    if inner_tag == 0x30 and der[inner_start : inner_start + 1] in _TBS_STARTS:
                        one = der if position == 0 and end == len(der) else der[position:end]
                        serial = _serial_octet(der, inner_start)
                        loaded.append((self.certificate(one, where, serial_octet=serial), one))
                        position = end
                        continue
            except DERError as exc:
                raise CertificateFormatError(
                    f"{where}: {decoded}{len(der)} bytes that are not DER ({exc})"
                ) from None
            loaded += self.load_structure(read_element(der, position), where)
            position = end
        return loaded

    def load_structure(self, element: Element, where: object) -> _Loaded:
        """Tell a certificate, PKCS#7, Netscape sequence and CMMF apart by their structure."""
        if element.tag != 0x30:
            raise CertificateFormatError(
                f"{where}: a DER {element.name} of {element.end - element.start} bytes, "
                "not a certificate or a certificate container"
            )
        der = element.encoded
        try:
            children = element.children()
            first = children[0] if children else None
            if first is not None and first.tag == 0x06:
                oid = first.content
                if oid == _OID_SIGNED_DATA:
                    return self.load_pkcs7(der, where)
                if oid == _OID_NETSCAPE_CERT_SEQUENCE:
                    return self.load_netscape(children, where)
                if oid[:-1] == _OID_PKCS7 and oid[-1] in _PKCS7_TYPES:
                    kind = _PKCS7_TYPES[oid[-1]]
                    raise CertificateFormatError(
                        f"{where}: a PKCS7 {kind}, not the certs-only SignedData that carries "
                        "certificates"
                    )
            if first is not None and first.tag in (0xA1, 0x30) and len(children) <= 2:
                return self.load_cmmf(children, where)
        except DERError as exc:
            raise CertificateFormatError(f"{where}: malformed ASN.1 ({exc})") from None
        tags = ", ".join(c.name for c in children[:4]) + (", ..." if len(children) > 4 else "")
        raise CertificateFormatError(
            f"{where}: a SEQUENCE of {len(children)} elements ({tags or 'empty'}) that is not "
            "a certificate, PKCS7, Netscape Certificate Sequence or CMMF CertRepContent"
        )

    def certificate(
        self, der: bytes, where: object, *, serial_octet: int | None = None
    ) -> x509.Certificate:
        """Load one DER certificate with cryptography, counting it against the cap.

        ``serial_octet`` is the serial number's first content octet when the caller already
        found it (0x00 to 0x7F: positive, unless it is the only one and zero).
        """
        self.count_certificates(1, where)
        return _parse_certificate(der, where, serial_octet)

    def count_certificates(self, number: int, where: object) -> None:
        """Count certificates against the cap."""
        self.count += number
        if self.count > MAX_CERTIFICATES:
            raise CertificateFormatError(f"{where}: more than {MAX_CERTIFICATES} certificates")

    def load_pkcs7(self, der: bytes, where: object) -> _Loaded:
        """A PKCS#7 certs-only SignedData, DER or BER, its SET sorted or not."""
        try:
            with _quiet_cryptography():
                certificates = pkcs7.load_der_pkcs7_certificates(der)
        except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
            raise CertificateFormatError(f"{where}: unreadable PKCS7 ({exc})") from None
        if not certificates:
            raise CertificateFormatError(f"{where}: PKCS7 SignedData holds no certificates")
        self.count_certificates(len(certificates), where)
        return [(c, c.public_bytes(Encoding.DER)) for c in certificates]

    def load_netscape(self, children: tuple[Element, ...], where: object) -> _Loaded:
        """``SEQUENCE { OID 2.16.840.1.113730.2.5, [0] EXPLICIT SEQUENCE OF Certificate }``."""
        what = f"{where}: Netscape Certificate Sequence"
        if len(children) == 1:
            raise CertificateFormatError(f"{what} holds no certificates")
        wrapper = children[1]
        if len(children) > 2 or wrapper.tag != 0xA0:
            raise CertificateFormatError(f"{what} has a {wrapper.name} where [0] was expected")
        inner = wrapper.children()
        if len(inner) != 1 or inner[0].tag != 0x30:
            raise CertificateFormatError(f"{what}: [0] does not hold one SEQUENCE OF Certificate")
        return self.certificates(inner[0].children(), what)

    def load_cmmf(self, children: tuple[Element, ...], where: object) -> _Loaded:
        """CMMF / CMP ``CertRepContent``, in EXPLICIT (RFC 4210) or IMPLICIT (NSS) tagging.

        ``caPubs [1]``: EXPLICIT wraps one ``SEQUENCE OF Certificate``; IMPLICIT replaces that
        SEQUENCE's tag, so ``[1]`` directly holds the certificates.  ``certificate [0]`` of
        ``CertOrEncCert``: EXPLICIT wraps the Certificate; IMPLICIT replaces its tag (NSS rewrites
        the ``A0`` byte to ``30`` before decoding, which is what happens here).
        """
        what = f"{where}: CMMF CertRepContent"
        loaded: _Loaded = []
        if children[0].tag == 0xA1:
            ca_pubs, *rest = children
            items = ca_pubs.children()
            if len(items) == 1 and items[0].tag == 0x30 and not _is_certificate(items[0]):
                items = items[0].children()  # EXPLICIT: [1] { SEQUENCE OF Certificate }
            loaded += self.certificates(items, f"{what} caPubs")
        else:
            rest = list(children)
        if len(rest) != 1 or rest[0].tag != 0x30:
            raise CertificateFormatError(f"{what} has no response SEQUENCE")
        for number, response in enumerate(rest[0].children(), 1):
            fields = response.children() if response.tag == 0x30 else ()
            if len(fields) < 2 or fields[0].tag != 0x02 or fields[1].tag != 0x30:
                raise CertificateFormatError(f"{what}: CertResponse {number} is malformed")
            key_pair = fields[2] if len(fields) > 2 and fields[2].tag == 0x30 else None
            if key_pair is None:
                continue  # no certificate in this response (e.g. a rejection's status only)
            key_pair_fields = key_pair.children()
            choice = key_pair_fields[0] if key_pair_fields else None
            if choice is not None and choice.tag == 0xA1:
                raise CertificateFormatError(
                    f"{what}: CertResponse {number} holds an encryptedCert [1], which needs the "
                    "requester's private key to decrypt; ask for PKCS7 or PEM instead"
                )
            if choice is None or choice.tag != 0xA0:
                raise CertificateFormatError(
                    f"{what}: CertResponse {number} has no certificate [0]"
                )
            inner = choice.children()
            if len(inner) == 1 and inner[0].tag == 0x30:  # EXPLICIT: [0] { Certificate }
                der = inner[0].encoded
            else:  # IMPLICIT: [0] is the Certificate with its SEQUENCE tag replaced
                der = b"\x30" + choice.encoded[1:]
            loaded.append((self.certificate(der, f"{what} response {number}"), der))
        if not loaded:
            raise CertificateFormatError(f"{what} holds no certificates")
        return loaded

    def certificates(self, items: tuple[Element, ...], what: str) -> _Loaded:
        """A SEQUENCE OF Certificate, each loaded by cryptography."""
        if not items:
            raise CertificateFormatError(f"{what} holds no certificates")
        return [(self.certificate(item.encoded, what), item.encoded) for item in items]

    def load_zip(self, raw: bytes, where: object) -> _Loaded:
        """A ZIP archive: every member loaded as any other input, except a nested ZIP."""
        return load_zip_members(
            raw,
            where,
            max_size=self.max_zip_size,
            max_entries=self.max_zip_entries,
            load_member=lambda content, name: self.load(content, name, allow_zip=False),
        )


def _parse_certificate(der: bytes, where: object, serial_octet: int | None) -> x509.Certificate:
    """One DER certificate: the cached CA object for these bytes, or cryptography's parse.

    ``serial_octet`` is the serial number's first content octet when the caller already found
    it (0x00 to 0x7F: positive, unless it is the only one and zero).
    """
    known = known_ca_certificate(der)
    if known is not None:
        return known
    try:
        if (serial_octet is not None and 0 < serial_octet < 0x80) or _serial_is_positive(der):
            return x509.load_der_x509_certificate(der)
        with _quiet_cryptography():
            return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
        raise CertificateFormatError(
            f"{where}: {len(der)} bytes shaped like a certificate that cryptography "
            f"cannot load ({exc})"
        ) from None


@contextlib.contextmanager
def _quiet_cryptography() -> Iterator[None]:
    """Keep cryptography's warnings about data it still accepts from reaching the caller.

    A PKCS#7 SET that is not DER-sorted (OpenSSL's crl2pkcs7 writes one) makes cryptography warn
    "may become an exception"; a negative or zero serial number (an RFC 5280 violation some old
    CAs committed) makes it warn too.  The data loads today, so callers running with -W error must
    not see an exception (DOMAIN.md, "The containers").  ``catch_warnings`` swaps process-wide
    state, so it is entered only around the loads that can warn, not around every certificate.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
        warnings.filterwarnings("ignore", _PKCS7_NOT_DER_WARNING, UserWarning)
        yield


def _serial_octet(der: bytes, tbs_content: int) -> int | None:
    """The first content octet of the serial INTEGER that opens a TBS (after [0] version)."""
    position = tbs_content + 5 if der[tbs_content : tbs_content + 2] == b"\xa0\x03" else tbs_content
    header = der[position : position + 3]
    if len(header) == 3 and header[0] == 0x02 and 0 < header[1] < 0x80:
        return header[2]
    return None


def _is_one_certificate(der: bytes) -> bool:
    """Whether ``der`` is exactly one ``SEQUENCE { SEQUENCE { [0] | INTEGER ...`` of 256+ bytes.

    The shape every certificate over 255 bytes has (two-octet lengths), checked the way
    ``load_binary`` checks it.
    """
    return (
        der[:2] == b"\x30\x82"
        and int.from_bytes(der[2:4], "big") == len(der) - 4
        and der[4:6] == b"\x30\x82"
        and int.from_bytes(der[6:8], "big") <= len(der) - 8
        and der[8:9] in _TBS_STARTS
    )


def _serial_is_positive(der: bytes) -> bool:
    """Whether a certificate's serial number is positive (cryptography warns otherwise)."""
    try:
        _, start, end = read_header(der)
        _, position, end = read_header(der, start, end)  # tbsCertificate
        if der[position] == 0xA0:  # [0] EXPLICIT version
            position = read_header(der, position, end)[2]
        tag, start, stop = read_header(der, position, end)
    except (DERError, IndexError):
        return True  # not for us to judge: cryptography reports what is wrong
    return tag != 0x02 or (start < stop and der[start] < 0x80 and any(der[start:stop]))


def _looks_binary(raw: bytes) -> bool:
    """A control character first, or bytes past ASCII: binary (unless PEM hides inside)."""
    return (raw[0] < 0x20 and raw[0] not in WHITESPACE) or not raw.isascii()


def _is_certificate(element: Element) -> bool:
    """Whether a SEQUENCE is shaped like a Certificate: SEQUENCE, SEQUENCE, BIT STRING."""
    children = element.children()
    return len(children) == 3 and [c.tag for c in children] == [0x30, 0x30, 0x03]
