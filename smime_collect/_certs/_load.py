"""SANS-I/O: certificate data in any CollectSMIME format, into a classified chain.

:func:`load_certificates` tells the format from the bytes (``docs/explanation/formats.md``, "The
containers"):

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
loader for are taken apart by :mod:`smime_collect._certs._wrappers`; ZIP archives are opened by
:mod:`smime_collect._certs._zip`.  The work is bounded: input size, PEM blocks,
certificates, ASN.1 depth and ZIP size/entries all have caps.  The loader notes what it read as it
goes (:class:`smime_collect._certs._format.PayloadFormat`); :func:`identify_payload` asks only that.

The shortcuts (standard PEM, the CA cache, the serial pre-check) live in
:mod:`smime_collect._certs._fast` and read the same as the plain path here.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.utils import CryptographyDeprecationWarning

from .._exceptions import CertificateFormatError
from . import _fast
from ._chain import CertificateChain, classify
from ._der import DERError, Element, read_element, read_header
from ._format import Container, PayloadEncoding, PayloadFormat
from ._node import Loaded
from ._pem import (
    WHITESPACE,
    block_name,
    decode_base64,
    find_begin,
    find_end_marker,
    strip_pem_headers,
)
from ._wrappers import OID_NETSCAPE_CERT_SEQUENCE, cmmf_certificates, netscape_certificates
from ._x509 import TBS_FIRST_TAGS
from ._zip import ZIP_MAGIC, load_zip_members

__all__ = ["CertificateChain", "identify_payload", "load_certificates"]

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

_PADDING_AFTER_DER = WHITESPACE + b"\x00"  # what may follow the last binary structure
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
# Labels whose blocks must hold certificates; other blocks (keys, CRLs, requests) are skipped.
_CERTIFICATE_LABELS = re.compile(rb"CERTIFICATE|PKCS ?#?7|CMS|CERTS|CHAIN|SEQUENCE|CMMF|CMP")
_PKCS7_NOT_DER_WARNING = "PKCS#7 certificates could not be parsed as DER"
# What is noted for every certificate and PEM block, looked up once: Python 3.11 reaches an enum
# member through a descriptor (python/cpython#93910), 0.17 us a lookup.
_CERTIFICATE, _PEM = Container.CERTIFICATE, PayloadEncoding.PEM


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
    loader = _Loader(max_zip_size=max_zip_size, max_zip_entries=max_zip_entries)
    return classify(loader.load(_input_bytes(data), "input", allow_zip=True))


def identify_payload(data: bytes | str) -> PayloadFormat:
    """What certificate data holds, as :func:`load_certificates` would find it, without loading it.

    The loader reads until it knows the container (ZIP, PKCS#7, a certificate, ...) and how it is
    written, and stops there: no certificate is parsed, so this is cheap and warns about nothing.

    Args:
        data: Certificate data, as received.

    Returns:
        The format; data the loader recognises nothing in has no container.

    Raises:
        TypeError: ``data`` is neither bytes nor str.
    """
    loader = _Loader(
        max_zip_size=DEFAULT_MAX_ZIP_SIZE,
        max_zip_entries=DEFAULT_MAX_ZIP_ENTRIES,
        identify_only=True,
    )
    with contextlib.suppress(CertificateFormatError, _FormatFound):
        loader.load(_input_bytes(data), "input", allow_zip=True)
    return loader.payload_format


def _input_bytes(data: bytes | str) -> bytes:
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
    return raw


class _FormatFound(Exception):  # noqa: N818 - not an error: identify_payload's stop signal
    """Raised by an identifying loader as soon as it knows the container."""


@attrs.define
class _Loader:
    """One load: the caps, the certificates counted so far, and what the payload turned out to be.

    ``source`` names what is being read in every message ("input", "PEM block 2 (PKCS7) of input",
    "ZIP member 'chain.pem'").
    """

    max_zip_size: int
    max_zip_entries: int
    identify_only: bool = False
    count: int = 0
    container: Container | None = None
    encoding: PayloadEncoding | None = None

    @property
    def payload_format(self) -> PayloadFormat:
        """What the payload holds, as far as the load got."""
        return PayloadFormat(self.container, self.encoding or PayloadEncoding.BINARY)

    def found(self, container: Container) -> None:
        """Note the payload's container (the first one found counts); an identify stops here."""
        if self.container is None:
            self.container = container
        if self.identify_only:
            raise _FormatFound

    def wrote(self, encoding: PayloadEncoding) -> None:
        """Note how the payload is written (the outermost encoding counts)."""
        if self.encoding is None:
            self.encoding = encoding

    def load(self, raw: bytes, source: str, *, allow_zip: bool) -> Loaded:
        """Any supported form."""
        if raw.startswith(ZIP_MAGIC):
            if not allow_zip:
                raise CertificateFormatError(f"{source} is a ZIP inside a ZIP, which is not read")
            self.wrote(PayloadEncoding.BINARY)
            self.found(Container.ZIP)
            return self.load_zip(raw, source)
        if raw[:1] == b"0":
            # DER starts with 0x30, which is ASCII "0": look at the structure, then at the text.
            noted = self.container, self.encoding
            self.wrote(PayloadEncoding.BINARY)
            try:
                return self.load_binary(raw, source)
            except CertificateFormatError:
                if not raw.isascii() or find_begin(raw, 0) is None:
                    raise
                self.container, self.encoding = noted  # it is text after all
        elif _looks_binary(raw) and find_begin(raw, 0) is None:
            self.wrote(PayloadEncoding.BINARY)
            return self.load_binary(raw, source)
        return self.load_text(raw, source, allow_zip=allow_zip)

    # -- text -----------------------------------------------------------------------------------

    def load_text(self, raw: bytes, source: str, *, allow_zip: bool) -> Loaded:
        """PEM blocks, or failing any marker, bare base64."""
        if not self.identify_only:  # (the shortcut notes no format: it loads, or gives way)
            bodies = _fast.standard_certificate_bodies(raw, MAX_PEM_BLOCKS)
            if bodies is not None:
                standard = _fast.load_standard_pem(self, bodies)
                if standard is not None:
                    return standard
        match = find_begin(raw, 0)
        if match is None:  # no BEGIN line anywhere
            return self.load_base64(raw, source, allow_zip=allow_zip)
        self.wrote(_PEM)
        loaded: Loaded = []
        labels: list[bytes] = []
        while match is not None:
            if len(labels) == MAX_PEM_BLOCKS:
                raise CertificateFormatError(f"{source} has more than {MAX_PEM_BLOCKS} PEM blocks")
            label = match.group(1)
            labels.append(label)
            block = block_name(len(labels), label, source)
            end = find_end_marker(raw, match.end())
            if end is None:
                raise CertificateFormatError(f"{block} is truncated: no END line")
            loaded += self.load_block(raw[match.end() : end], block, label, allow_zip=allow_zip)
            line_end = raw.find(b"\n", end)
            match = None if line_end < 0 else find_begin(raw, line_end + 1)
        if not loaded:
            names = ", ".join(label.decode("ascii", "replace") for label in labels)
            raise CertificateFormatError(
                f"{source} holds no certificate, only PEM blocks labelled {names}"
            )
        return loaded

    def load_block(self, body: bytes, block: str, label: bytes, *, allow_zip: bool) -> Loaded:
        """What one PEM block holds: the armour may wrap any binary form, a ZIP included.

        A block that does not load is an error when its label says it holds certificates (or it
        has none), and skipped otherwise (a private key, a CRL, a request).
        """
        if b":" in body:
            body = strip_pem_headers(body)
        compact = body.translate(None, WHITESPACE)
        known = _fast.ca_cache.get_by_base64(compact)
        if known is not None:  # a CA seen before: no need to decode or parse it again
            self.found(_CERTIFICATE)
            self.count_certificates(1, block)
            return [(known.certificate, known.der)]
        try:
            der = decode_base64(compact, block)
            if der.startswith(ZIP_MAGIC):
                loaded = self.load(der, block, allow_zip=allow_zip)
            else:
                loaded = self.load_binary(der, block)
        except CertificateFormatError:
            if not label or _CERTIFICATE_LABELS.search(label.upper()):
                raise
            return []
        cached = _fast.ca_cache.get(der) if len(loaded) == 1 and loaded[0][1] is der else None
        if cached is not None:  # the block is one CA certificate read before
            _fast.ca_cache.put_base64(compact, cached)
        return loaded

    def load_base64(self, raw: bytes, source: str, *, allow_zip: bool) -> Loaded:
        """Bare base64 (with or without line breaks) of any binary form."""
        compact = raw.translate(None, WHITESPACE)
        if not _BASE64.fullmatch(compact):
            sample = raw.strip()[:24].decode("ascii", "backslashreplace")
            raise CertificateFormatError(
                f"{source} is neither PEM, base64 nor DER certificate data "
                f"({len(raw)} bytes starting {sample!r})"
            )
        try:
            der = binascii.a2b_base64(compact, strict_mode=True)
        except binascii.Error as exc:
            raise CertificateFormatError(
                f"{source} is neither PEM nor DER, and not valid base64 either ({exc})"
            ) from None
        self.wrote(PayloadEncoding.BASE64)
        if der.startswith(ZIP_MAGIC):
            return self.load(der, f"base64-decoded {source}", allow_zip=allow_zip)
        return self.load_binary(der, source, decoded="base64 decoded to ")

    # -- binary ---------------------------------------------------------------------------------

    def load_binary(self, der: bytes, source: str, *, decoded: str = "") -> Loaded:
        """One or more consecutive DER/BER structures, trailing whitespace tolerated."""
        if der.startswith(b"\x30\x80"):
            # Indefinite length: only BER PKCS#7 is written that way; cryptography reads BER.
            self.found(Container.PKCS7)
            return self.load_pkcs7(der, source)
        loaded: Loaded = []
        position = 0
        while position < len(der):
            if (
                loaded
                and der[position] in _PADDING_AFTER_DER
                and not der[position:].strip(_PADDING_AFTER_DER)
            ):
                break  # a trailing newline or padding after the last structure
            try:
                tag, start, end = read_header(der, position)
                # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version (or the
                # serial INTEGER of a v1 certificate) ... } }: told apart from the containers,
                # which never open that way, by its first bytes.
                if tag == 0x30:
                    inner_tag, inner_start, _ = read_header(der, start, end)
                    if inner_tag == 0x30 and der[inner_start : inner_start + 1] in TBS_FIRST_TAGS:
                        one = der if position == 0 and end == len(der) else der[position:end]
                        self.found(_CERTIFICATE)
                        tbs_content = inner_start - position
                        loaded.append((self.certificate(one, source, tbs_content=tbs_content), one))
                        position = end
                        continue
            except DERError as exc:
                raise CertificateFormatError(
                    f"{source}: {decoded}{len(der)} bytes that are not DER ({exc})"
                ) from None
            loaded += self.load_structure(read_element(der, position), source)
            position = end
        return loaded

    def load_structure(self, element: Element, source: str) -> Loaded:
        """Tell PKCS#7, a Netscape sequence and CMMF apart by their structure."""
        if element.tag != 0x30:
            raise CertificateFormatError(
                f"{source}: a DER {element.name} of {element.end - element.start} bytes, "
                "not a certificate or a certificate container"
            )
        try:
            children = element.children()
            first = children[0] if children else None
            if first is not None and first.tag == 0x06:
                oid = first.content
                if oid == _OID_SIGNED_DATA:
                    self.found(Container.PKCS7)
                    return self.load_pkcs7(element.encoded, source)
                if oid == OID_NETSCAPE_CERT_SEQUENCE:
                    self.found(Container.NETSCAPE)
                    return self.parse_all(netscape_certificates(children, source))
                if oid[:-1] == _OID_PKCS7 and oid[-1] in _PKCS7_TYPES:
                    kind = _PKCS7_TYPES[oid[-1]]
                    raise CertificateFormatError(
                        f"{source}: a PKCS7 {kind}, not the certs-only SignedData that carries "
                        "certificates"
                    )
            if first is not None and first.tag in (0xA1, 0x30) and len(children) <= 2:
                self.found(Container.CMMF)
                return self.parse_all(cmmf_certificates(children, source))
        except DERError as exc:
            raise CertificateFormatError(f"{source}: malformed ASN.1 ({exc})") from None
        tags = ", ".join(c.name for c in children[:4]) + (", ..." if len(children) > 4 else "")
        raise CertificateFormatError(
            f"{source}: a SEQUENCE of {len(children)} elements ({tags or 'empty'}) that is not "
            "a certificate, PKCS7, Netscape Certificate Sequence or CMMF CertRepContent"
        )

    def certificate(
        self, der: bytes, source: str, *, tbs_content: int | None = None
    ) -> x509.Certificate:
        """Load one DER certificate with cryptography, counting it against the cap.

        A CA certificate loaded before comes from the CA cache.  ``tbs_content`` is where its
        TBSCertificate's content starts, when the caller knows.
        """
        self.count += 1
        if self.count > MAX_CERTIFICATES:
            raise CertificateFormatError(f"{source}: more than {MAX_CERTIFICATES} certificates")
        known = _fast.ca_cache.get(der)
        if known is not None:
            return known.certificate
        try:
            if _fast.parses_without_warning(der, tbs_content):
                return x509.load_der_x509_certificate(der)
            with _quiet_cryptography():
                return x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
            raise CertificateFormatError(
                f"{source}: {len(der)} bytes shaped like a certificate that cryptography "
                f"cannot load ({exc})"
            ) from None

    def count_certificates(self, number: int, source: str) -> None:
        """Count certificates against the cap."""
        self.count += number
        if self.count > MAX_CERTIFICATES:
            raise CertificateFormatError(f"{source}: more than {MAX_CERTIFICATES} certificates")

    def load_pkcs7(self, der: bytes, source: str) -> Loaded:
        """A PKCS#7 certs-only SignedData, DER or BER, its SET sorted or not."""
        try:
            with _quiet_cryptography():
                certificates = pkcs7.load_der_pkcs7_certificates(der)
        except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
            raise CertificateFormatError(f"{source}: unreadable PKCS7 ({exc})") from None
        if not certificates:
            raise CertificateFormatError(f"{source}: PKCS7 SignedData holds no certificates")
        self.count_certificates(len(certificates), source)
        return [(c, c.public_bytes(serialization.Encoding.DER)) for c in certificates]

    def parse_all(self, found: list[tuple[bytes, str]]) -> Loaded:
        """Each certificate a wrapper holds, parsed by cryptography (``(DER, name)`` in)."""
        return [(self.certificate(der, what), der) for der, what in found]

    def load_zip(self, raw: bytes, source: str) -> Loaded:
        """A ZIP archive: every member loaded as any other input, except a nested ZIP."""
        return load_zip_members(
            raw,
            source,
            max_size=self.max_zip_size,
            max_entries=self.max_zip_entries,
            load_member=lambda content, name: self.load(content, name, allow_zip=False),
        )


@contextlib.contextmanager
def _quiet_cryptography() -> Iterator[None]:
    """Keep cryptography's warnings about data it still accepts from reaching the caller.

    A PKCS#7 SET that is not DER-sorted (OpenSSL's crl2pkcs7 writes one) makes cryptography warn
    "may become an exception"; a negative or zero serial number (an RFC 5280 violation some old
    CAs committed) makes it warn too.  The data loads today, so callers running with -W error must
    not see an exception (``docs/explanation/formats.md``, "The containers").

    This is the only ``catch_warnings`` in the package: it swaps process-wide state and is not
    thread-safe before Python 3.14, so it is entered only around the loads that can warn, inside
    ``load_certificates``, never on a path that renders names or reports.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
        warnings.filterwarnings("ignore", _PKCS7_NOT_DER_WARNING, UserWarning)
        yield


def _looks_binary(raw: bytes) -> bool:
    """A control character first, or bytes past ASCII: binary (unless PEM hides inside)."""
    return (raw[0] < 0x20 and raw[0] not in WHITESPACE) or not raw.isascii()
