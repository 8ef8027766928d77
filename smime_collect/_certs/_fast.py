"""SANS-I/O: every shortcut of the certificate layer, in one place, behind one switch.

Each shortcut reads exactly what the plain path reads, only faster; together they keep
``load_certificates`` near ``x509.load_pem_x509_certificates`` (``benchmarks/bench_certs.py``
measures both, and each shortcut separately is load-bearing there):

- **the CA cache** (:class:`CACache`, one instance): what was read from CA certificates seen before,
  self-signature verdict included, so a batch under one CA reads and checks them once;
- **the standard-PEM split** (:func:`standard_certificate_bodies`, :func:`load_standard_pem`):
  plain ``CERTIFICATE`` blocks cut with one ``bytes.split`` instead of the tolerant marker scan;
- **the inline DER walk** (:func:`read_fields`): names and key identifiers read without building
  elements, in place of :func:`smime_collect._certs._x509.read_fields`;
- **the serial pre-checks** (:func:`is_one_certificate`, :func:`parses_without_warning`): a
  positive serial number proves cryptography will not warn, so no warning filter is swapped;
- **the small-chain answer** (:func:`simple_chain`): an end entity, one CA and one root need no
  issuer graph.

``enabled`` is the switch: :func:`disabled` turns every shortcut off, for debugging and for the
tests, which run the certificate suite both ways.  Comparing the two is the point: nothing here may
change a result.
"""

from __future__ import annotations

import binascii
import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from cryptography import x509

from .._exceptions import CertificateFormatError
from ._der import DERError, read_header, trusted_bounds
from ._pem import WHITESPACE
from ._x509 import TBS_FIRST_TAGS

if TYPE_CHECKING:
    from ._node import ChainNode, Loaded

__all__ = [
    "CACache",
    "ca_cache",
    "disabled",
    "enabled",
    "is_one_certificate",
    "load_standard_pem",
    "parses_without_warning",
    "read_fields",
    "simple_chain",
    "standard_certificate_bodies",
]

enabled = True

_TBS_FIRST_OCTETS = tuple(tag[0] for tag in TBS_FIRST_TAGS)  # the same, as integers

# What the walk reads: the fields of smime_collect._certs._x509.Fields, as a plain tuple.
FieldTuple = tuple[bytes, bytes, bool | None, bytes | None, bytes | None]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Turn every shortcut off for the duration (the CA cache is emptied on the way in and out).

    Yields:
        Nothing.
    """
    global enabled  # noqa: PLW0603 - the one switch, read by every shortcut
    previous, enabled = enabled, False
    ca_cache.clear()
    try:
        yield
    finally:
        enabled = previous
        ca_cache.clear()


# -- the CA cache ---------------------------------------------------------------------------------


class CACache:
    """What was read from CA certificates, by DER and by PEM base64, bounded (oldest out first).

    The same few intermediates and roots arrive with every order of an account, so the node read
    from a CA certificate (its parsed certificate, names, key identifiers and self-signature
    verdict) is kept: loading it again skips cryptography's parse, the DER walk and the signature
    check.  End entities are unique per order and never kept.  PEM bodies are keyed too (their
    base64 as written, or without whitespace), so a known CA block skips even the base64 decode.

    A lookup is one ``dict.get``; a change (evict the oldest, insert) holds the lock, so threads
    that load at once never evict the same entry twice.  While the shortcuts are off nothing is
    kept, so every lookup misses.

    Attributes:
        get: ``get(der)``: the node of the CA certificate with exactly this DER, or None.
        get_by_base64: ``get_by_base64(body)``: the node of the cached CA certificate whose DER
            encodes to exactly this PEM base64 (as written, or with whitespace removed), or None.
    """

    def __init__(self, max_entries: int = 128) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._by_der: dict[bytes, ChainNode] = {}
        self._by_base64: dict[bytes, ChainNode] = {}
        # The lookups are the tables' own dict.get (the tables are cleared, never replaced): a
        # method around each cost 0.1 us, and a load under a known CA makes seven.
        self.get = self._by_der.get
        self.get_by_base64 = self._by_base64.get

    def put(self, node: ChainNode) -> None:
        """Keep a CA certificate's node (nothing while the shortcuts are off).

        Args:
            node: The node.
        """
        if enabled:
            self._put(self._by_der, node.der, node)

    def put_base64(self, body: bytes, node: ChainNode) -> None:
        """Key a node this cache holds by its certificate's PEM base64 too.

        Args:
            body: The PEM block's base64 (only base64 and whitespace), as a lookup will see it.
            node: What :attr:`get` answered for the certificate's DER.
        """
        if enabled:
            self._put(self._by_base64, body, node)

    def clear(self) -> None:
        """Forget every cached certificate."""
        with self._lock:
            self._by_der.clear()
            self._by_base64.clear()

    def _put(self, table: dict[bytes, ChainNode], key: bytes, node: ChainNode) -> None:
        # The lock is taken by hand: a with block costs 0.15 us more, twice in a load under CAs
        # the process has not seen.
        self._lock.acquire()
        try:
            while len(table) >= self.max_entries:
                del table[next(iter(table))]
            table[key] = node
        finally:
            self._lock.release()


ca_cache = CACache()


# -- standard PEM ---------------------------------------------------------------------------------

_DASHES = b"-----"
_BEGIN_CERTIFICATE = b"BEGIN CERTIFICATE"
_END_CERTIFICATE = b"END CERTIFICATE"


def standard_certificate_bodies(raw: bytes, max_blocks: int) -> list[bytes] | None:
    """The bodies of RFC 7468 ``CERTIFICATE`` blocks, when that is all the text holds.

    The common case (what CollectSMIME sends for responseType 3, what OpenSSL writes) is read with
    one ``bytes.split`` instead of a marker scan: each 5-dash run cuts the text, so standard PEM
    splits into ``[space, "BEGIN CERTIFICATE", body, "END CERTIFICATE", space, ...]``.  Anything
    else - other labels, text around the blocks, the endpoint page's sloppy markers, more than
    ``max_blocks`` blocks - gives None and is left to the tolerant scanner, which reads it the
    same way, only slower.

    Args:
        raw: The text.
        max_blocks: The most blocks accepted (the split list stays bounded by it).

    Returns:
        The text between each block's markers (whitespace included), or None (always None while
        the shortcuts are off).
    """
    if not enabled:
        return None
    # maxsplit bounds the list split() builds, whatever the input holds.
    parts = raw.split(_DASHES, 4 * max_blocks + 1)
    cuts = len(parts) - 1
    if cuts == 0 or cuts % 4 or cuts > 4 * max_blocks:
        return None
    blocks = cuts // 4
    if (
        parts[1::4].count(_BEGIN_CERTIFICATE) != blocks
        or parts[3::4].count(_END_CERTIFICATE) != blocks
        or (parts[0] and not parts[0].isspace())
        or (parts[-1] and not parts[-1].isspace())
    ):
        return None
    for between in parts[4:-1:4]:
        # The scanner resumes on the line after an END line: a BEGIN on the same line is not a
        # block start to it, so neither may it be here.
        if b"\n" not in between or not between.isspace():
            return None
    return parts[2::4]


class PemLoader(Protocol):
    """What :func:`load_standard_pem` needs of the loader."""

    count: int

    def count_certificates(self, number: int, source: str) -> None:
        """Count certificates against the cap."""

    def certificate(self, der: bytes, source: str, *, tbs_content: int | None) -> x509.Certificate:
        """Parse one DER certificate, counted against the cap."""

    def load_binary(self, der: bytes, source: str) -> Loaded:
        """Load any binary form."""


def load_standard_pem(loader: PemLoader, bodies: list[bytes]) -> Loaded | None:
    """Standard ``CERTIFICATE`` blocks; None, with nothing counted, when one fails.

    A block that fails is read again by the marker scan, which raises the error that names it:
    this path builds no messages, so it costs nothing on input that loads.  Nor does it note the
    payload's format: ``identify_payload``, which asks only that, never comes here.

    Why not ``x509.load_pem_x509_certificates`` on the whole text: classification needs each
    certificate's DER, which cryptography does not hand back without re-encoding it
    (``public_bytes`` costs more than decoding the base64 and parsing again).

    Args:
        loader: The load in progress.
        bodies: What :func:`standard_certificate_bodies` cut.

    Returns:
        Each certificate with its DER, or None.
    """
    count = loader.count
    loaded: Loaded = []
    known_count = 0
    try:
        for body in bodies:
            # Known CA blocks are keyed by their body as written, line breaks included: the text
            # of a CA's block is the same in every order's response.
            known = ca_cache.get_by_base64(body)
            if known is not None:
                known_count += 1
                loaded.append((known.certificate, known.der))
                continue
            compact = body.translate(None, WHITESPACE)
            if not compact:
                break
            der = binascii.a2b_base64(compact, strict_mode=True)
            if is_one_certificate(der):  # what load_binary would find, without its walk
                loaded.append((loader.certificate(der, "", tbs_content=8), der))
                if (cached := ca_cache.get(der)) is not None:  # a CA, its block not yet keyed
                    ca_cache.put_base64(body, cached)
            else:  # a container under a CERTIFICATE label (OpenSSL writes a Netscape one so)
                loaded += loader.load_binary(der, "")
        else:
            loader.count_certificates(known_count, "")
            return loaded
    except (binascii.Error, CertificateFormatError):
        pass  # the scanner reads the text again, and names the block that failed
    loader.count = count
    return None


# -- the inline DER walk --------------------------------------------------------------------------

# RFC 5280 section 4.2.1: basicConstraints (2.5.29.19), subjectKeyIdentifier (2.5.29.14) and
# authorityKeyIdentifier (2.5.29.35), told apart by the last octet after the id-ce prefix.
_ID_CE = b"\x06\x03\x55\x1d"  # OBJECT IDENTIFIER 2.5.29.x, three content octets
_BASIC_CONSTRAINTS, _SKI, _AKI, _ALL_THREE = 1, 2, 4, 7  # one bit each, once seen
_NONE = (0, 0, 0)  # the first element of an empty SEQUENCE: no tag, no content
# The bit of each extension, by the last octet of its OID (a table: a dict's get costs more).
_BIT = bytes(
    {0x13: _BASIC_CONSTRAINTS, 0x0E: _SKI, 0x23: _AKI}.get(octet, 0) for octet in range(256)
)


def read_fields(der: bytes) -> FieldTuple | None:
    """Names and key identifiers straight from a certificate's DER, inline.

    Reads what :func:`smime_collect._certs._x509.read_fields` reads, on DER cryptography has
    already parsed: short lengths are decoded inline and only long ones (0x80 and up) cost a call.

    Args:
        der: The DER of a certificate cryptography loaded.

    Returns:
        The fields, or None when the shortcuts are off or the walk does not fit these bytes (the
        strict reader then reads them).
    """
    if not enabled:
        return None
    # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
    # signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions } }
    # This runs for every end entity loaded, so each element is skipped in place: "first" is its
    # first length octet, and only long-form lengths (0x80 and up) cost a call.
    try:
        first = der[1]
        pos = 2 if first < 0x80 else 2 + (first & 0x7F)  # into the Certificate
        pos, tbs_end = trusted_bounds(der, pos)  # into the tbsCertificate
        if der[pos] == 0xA0:
            pos += 2 + der[pos + 1]  # [0] EXPLICIT version: always short
        first = der[pos + 1]  # serialNumber
        pos = pos + 2 + first if first < 0x80 else trusted_bounds(der, pos)[1]
        first = der[pos + 1]  # signature AlgorithmIdentifier
        pos = pos + 2 + first if first < 0x80 else trusted_bounds(der, pos)[1]
        first = der[pos + 1]
        end = pos + 2 + first if first < 0x80 else trusted_bounds(der, pos)[1]
        issuer = der[pos:end]
        first = der[end + 1]  # validity
        pos = end + 2 + first if first < 0x80 else trusted_bounds(der, end)[1]
        first = der[pos + 1]
        end = pos + 2 + first if first < 0x80 else trusted_bounds(der, pos)[1]
        subject = der[pos:end]
        first = der[end + 1]  # subjectPublicKeyInfo
        pos = end + 2 + first if first < 0x80 else trusted_bounds(der, end)[1]
        while pos < tbs_end:  # issuerUniqueID [1] and subjectUniqueID [2] are skipped
            tag, first = der[pos], der[pos + 1]
            start, pos = (pos + 2, pos + 2 + first) if first < 0x80 else trusted_bounds(der, pos)
            if tag == 0xA3:
                ca, ski, aki = _walk_extensions(der, start)
                return issuer, subject, ca, ski, aki
    except (IndexError, ValueError):  # DERError included: a malformed extension value
        return None
    return issuer, subject, None, None, None


def _walk_extensions(der: bytes, start: int) -> tuple[bool | None, bytes | None, bytes | None]:
    """The cA flag, SKI and AKI keyIdentifier from ``[3] { SEQUENCE OF Extension }``.

    cryptography checks the extensions' own structure when it loads a certificate, but reads
    what an extnValue holds only when asked, so that part is checked here as the strict reader
    checks it: one element filling the OCTET STRING, and for a SEQUENCE, elements filling it.
    The usual one-octet lengths are checked inline; a malformed value raises DERError, so the
    walk gives up and the strict reader decides.
    """
    ca: bool | None = None
    ski = aki = None
    seen = 0
    first = der[start + 1]  # the SEQUENCE OF Extension
    position, end = (start + 2, start + 2 + first) if first < 0x80 else trusted_bounds(der, start)
    while position < end:
        first = der[position + 1]  # Extension ::= SEQUENCE { extnID, critical, extnValue }
        if first < 0x80:
            oid = position + 2
            position = oid + first
        else:
            oid, position = trusted_bounds(der, position)
        # The OID's last octet rejects most extensions (key usage, SAN, policies...) at once.
        bit = _BIT[der[oid + 4]]
        if not bit or seen & bit or der[oid : oid + 4] != _ID_CE:
            continue  # another extension, or a repeat (the first one counts)
        seen |= bit
        value = oid + 5
        if der[value] == 0x01:  # critical BOOLEAN
            value += 2 + der[value + 1]
        first = der[value + 1]  # the extnValue OCTET STRING, which ends the Extension
        value = value + 2 if first < 0x80 else trusted_bounds(der, value)[0]
        tag, first = der[value], der[value + 1]  # the one element it must hold
        inner = value + 2
        if first >= 0x80 or tag & 0x1F == 0x1F or inner + first != position:
            tag, inner = _one_element(der, value, position)
        if bit == _SKI:  # SubjectKeyIdentifier ::= OCTET STRING
            ski = der[inner:position]
        else:  # basicConstraints and the AKI are SEQUENCEs; their first element decides
            if not tag & 0x20:
                raise DERError("a primitive element where a SEQUENCE was expected")
            tag, start, stop = _first_child(der, inner, position) if inner < position else _NONE
            if bit == _BASIC_CONSTRAINTS:  # SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }
                ca = tag == 0x01 and start < stop and der[start] != 0
            elif tag == 0x80:  # AKI: keyIdentifier [0] first
                aki = der[start:stop]
        if seen == _ALL_THREE:  # the rest (SAN, policies, AIA...) can wait
            break
    return ca, ski, aki


def _one_element(der: bytes, start: int, end: int) -> tuple[int, int]:
    """The tag and content start of the element ``der[start:end]`` must be exactly.

    Raises:
        DERError: It is not one well-formed element that ends at ``end``.
    """
    tag, inner, inner_end = read_header(der, start, end)
    if inner_end != end:
        raise DERError("an extension value that is not one element")
    return tag, inner


def _first_child(der: bytes, start: int, end: int) -> tuple[int, int, int]:
    """The first element of the content ``der[start:end]``, whose elements must fill it.

    Checked as :func:`smime_collect._certs._der.read_header` checks, with the usual one-octet
    lengths decoded inline.

    Returns:
        ``(tag, content_start, content_end)`` of the first element.

    Raises:
        DERError: The elements are malformed or do not fill the content.
    """
    tag, first = der[start], der[start + 1]
    content, position = start + 2, start + 2 + first
    if first >= 0x80 or tag & 0x1F == 0x1F or position > end:
        tag, content, position = read_header(der, start, end)
    content_end = position
    while position < end:  # more elements: each must fit too
        first = der[position + 1]
        if first < 0x80 and der[position] & 0x1F != 0x1F and position + 2 + first <= end:
            position += 2 + first
        else:
            position = read_header(der, position, end)[2]
    return tag, content, content_end


# -- serial pre-checks ----------------------------------------------------------------------------


def is_one_certificate(der: bytes) -> bool:
    """Whether ``der`` is exactly one ``SEQUENCE { SEQUENCE { [0] | INTEGER ...`` of 256+ bytes.

    The shape every certificate over 255 bytes has (two-octet lengths), checked the way the
    loader checks it; its TBSCertificate's content then starts at offset 8.

    Args:
        der: A decoded PEM body.

    Returns:
        The verdict (False while the shortcuts are off).
    """
    # Octet by octet: slices and int.from_bytes cost twice as much (0.4 us a load).
    size = len(der)
    return (
        enabled
        and size > 8
        and der[0] == der[4] == 0x30
        and der[1] == der[5] == 0x82
        and der[2] << 8 | der[3] == size - 4
        and der[6] << 8 | der[7] <= size - 8
        and der[8] in _TBS_FIRST_OCTETS
    )


def parses_without_warning(der: bytes, tbs_content: int | None = None) -> bool:
    """Whether cryptography will load this certificate without a warning.

    It warns about a negative or zero serial number (an RFC 5280 violation some old CAs
    committed); a positive one proves it will not, so no warning filter need be swapped.

    Args:
        der: A certificate's DER.
        tbs_content: Where its TBSCertificate's content starts, when the caller knows.

    Returns:
        True when proven, False when not (always False while the shortcuts are off).
    """
    if not enabled:
        return False
    try:
        if tbs_content is None:
            _, start, end = read_header(der)
            _, tbs_content, _ = read_header(der, start, end)
        if der[tbs_content] == 0xA0 and der[tbs_content + 1] == 0x03:  # [0] EXPLICIT version
            tbs_content += 5
        # The serialNumber INTEGER, with a short length: its first octet tells its sign.
        tag, length, lead = der[tbs_content], der[tbs_content + 1], der[tbs_content + 2]
    except (DERError, IndexError):
        return False  # not for us to judge: the quiet parse reports what is wrong
    if tag != 0x02 or not 0 < length < 0x80 or lead >= 0x80:
        return False
    end = tbs_content + 2 + length
    return end <= len(der) and (lead > 0 or any(der[tbs_content + 2 : end]))


# -- the small-chain answer -----------------------------------------------------------------------


def simple_chain(
    others: list[ChainNode], roots: list[ChainNode]
) -> tuple[ChainNode, list[ChainNode]] | None:
    """The end entity and the CA, without the issuer graph, when the rules leave nothing to sort.

    At most one root, one CA and one non-CA that issued nothing here (no other certificate names
    its subject as issuer, so the graph would give it no child): then the non-CA is the end
    entity, the CA the only intermediate, and no order or tie-break is involved.  The common
    EE + CA + root answer takes this path.

    Args:
        others: The certificates that are not roots.
        roots: The roots.

    Returns:
        ``(end entity, [the CA] or [])``, or None for the general path (always None while the
        shortcuts are off).
    """
    if not enabled or len(roots) > 1 or len(others) > 2:
        return None
    end_entity: ChainNode | None = None
    cas: list[ChainNode] = []
    for node in others:
        if node.ca:
            cas.append(node)
        elif end_entity is None:
            end_entity = node
        else:
            return None  # two end entity candidates: a tie-break
    if end_entity is None or len(cas) > 1:
        return None
    for node in others:
        if node is not end_entity and node.issuer == end_entity.subject:
            return None  # it may have issued the other one: the graph decides
    return end_entity, cas
