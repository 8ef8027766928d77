"""SANS-I/O: a small, strict reader of DER type-length-value elements.

cryptography parses certificates and PKCS#7, but has no loader for the two other wrappers
CollectSMIME sends: the Netscape Certificate Sequence (responseType 1) and CMMF / CMP
``CertRepContent`` (responseType 4).  This module reads just enough ASN.1 to take them apart and
hand every certificate back to cryptography.

Why our own reader (``docs/explanation/formats.md``, "Why our own DER reader"):

* ``cryptography.hazmat.asn1`` (added in 47.0) is documented as unstable, outside cryptography's
  compatibility policy, and cannot express the optional TLV fields CMMF needs;
* pyasn1 is an extra runtime dependency and needs hand-written specs for NSS's IMPLICIT tagging
  anyway (its ``rfc4210`` module fails on it);
* the job is about a hundred lines: read a header, check it against the bytes that are really
  there, descend a bounded number of levels.

What it accepts, on purpose:

* single-octet identifiers only (tag numbers 0-30; every tag these structures use);
* definite lengths only - the BER indefinite form (``0x80``) is refused, callers that must accept
  BER (PKCS#7) hand those bytes to cryptography instead;
* long-form lengths of at most 4 octets (nothing here comes near 4 GiB); non-minimal length
  encodings are tolerated, the length is what matters for safety;
* every declared length is checked against the bytes available before anything is sliced, and
  nesting deeper than ``max_depth`` levels is refused, so hostile input cannot make the reader
  allocate, recurse or loop without bound.

Errors are :class:`DERError`, a ``ValueError`` whose message says what was seen and where.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DERError",
    "Element",
    "looks_like_asn1_sequence",
    "read_element",
    "read_header",
    "read_single",
    "tag_name",
    "trusted_bounds",
]

# Certificates nest about 10 levels (Certificate > TBS > extensions > ... > GeneralName); the
# deepest wrapper here (CMMF > response > CertResponse > CertifiedKeyPair > [0] > Certificate)
# adds 6.  32 leaves ample room and still stops a "deep nesting" bomb quickly.
DEFAULT_MAX_DEPTH = 32

_CONSTRUCTED = 0x20
_TAG_NAMES = {
    0x01: "BOOLEAN",
    0x02: "INTEGER",
    0x03: "BIT STRING",
    0x04: "OCTET STRING",
    0x05: "NULL",
    0x06: "OBJECT IDENTIFIER",
    0x0C: "UTF8String",
    0x13: "PrintableString",
    0x17: "UTCTime",
    0x18: "GeneralizedTime",
    0x30: "SEQUENCE",
    0x31: "SET",
}


class DERError(ValueError):
    """The bytes are not the DER the caller expected."""


def tag_name(tag: int) -> str:
    """A readable name for an identifier octet (``SEQUENCE``, ``[0] constructed``, ``0x1f``).

    Args:
        tag: The identifier octet.

    Returns:
        The name.
    """
    if tag in _TAG_NAMES:
        return _TAG_NAMES[tag]
    if tag & 0xC0 == 0x80:
        kind = "constructed" if tag & _CONSTRUCTED else "primitive"
        return f"[{tag & 0x1F}] {kind}"
    return f"tag 0x{tag:02x}"


def read_header(data: bytes, offset: int = 0, end: int | None = None) -> tuple[int, int, int]:
    """Read one element's identifier and length, checked against the bytes available.

    Args:
        data: The buffer.
        offset: Where the element starts.
        end: Where the enclosing content ends (default: the end of ``data``).

    Returns:
        ``(tag, content_start, content_end)``.

    Raises:
        DERError: Truncated header, multi-octet tag, indefinite length, or a length that runs
            past ``end``.
    """
    if end is None:
        end = len(data)
    if offset + 2 > end:
        raise DERError(f"truncated element header at offset {offset}")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError(f"multi-octet tag 0x{tag:02x} at offset {offset} is not supported")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DERError(f"indefinite length (BER) at offset {offset} is not DER")
    else:
        count = first & 0x7F
        if count > 4:
            raise DERError(f"length of {count} octets at offset {offset} is too large")
        if start + count > end:
            raise DERError(f"truncated length at offset {offset}")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > end:
        raise DERError(
            f"{tag_name(tag)} at offset {offset} declares {length} bytes "
            f"but only {end - start} remain"
        )
    return tag, start, start + length


class Element(NamedTuple):
    """One DER element inside a buffer (offsets, not copies).

    A NamedTuple (immutable, and much cheaper to build than an attrs class, which matters when a
    large PKCS#7 or sequence is walked element by element).

    Attributes:
        tag: The identifier octet.
        data: The whole buffer the element lives in.
        start: Offset of the identifier octet.
        content_start: Offset of the first content octet.
        end: Offset just past the element.
        depth: Nesting level (0 for a top-level element).
        max_depth: The deepest level :meth:`children` may reach.
    """

    tag: int
    data: bytes
    start: int
    content_start: int
    end: int
    depth: int = 0
    max_depth: int = DEFAULT_MAX_DEPTH

    @property
    def constructed(self) -> bool:
        """Whether the element holds other elements (bit 6 of the identifier)."""
        return bool(self.tag & _CONSTRUCTED)

    @property
    def content(self) -> bytes:
        """The content octets."""
        return self.data[self.content_start : self.end]

    @property
    def encoded(self) -> bytes:
        """The whole element, header included."""
        return self.data[self.start : self.end]

    @property
    def name(self) -> str:
        """A readable name of the tag."""
        return tag_name(self.tag)

    def children(self) -> tuple[Element, ...]:
        """The elements inside a constructed element's content, which they must fill exactly.

        Returns:
            The child elements, in order.

        Raises:
            DERError: The element is primitive, the children are malformed, or they would nest
                deeper than ``max_depth``.
        """
        if not self.constructed:
            raise DERError(f"{self.name} at offset {self.start} is primitive, not constructed")
        if self.depth + 1 > self.max_depth:
            raise DERError(f"ASN.1 nesting deeper than {self.max_depth} levels")
        return _read_run(self.data, self.content_start, self.end, self.depth + 1, self.max_depth)


def _read_run(
    data: bytes, offset: int, end: int, depth: int, max_depth: int
) -> tuple[Element, ...]:
    elements = []
    while offset < end:
        tag, content_start, content_end = read_header(data, offset, end)
        elements.append(Element(tag, data, offset, content_start, content_end, depth, max_depth))
        offset = content_end
    return tuple(elements)


def read_element(data: bytes, offset: int = 0, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Element:
    """Read the element that starts at ``offset`` (bytes after it are left alone).

    Args:
        data: The buffer.
        offset: Where the element starts.
        max_depth: How deep :meth:`Element.children` may descend.

    Returns:
        The element.

    Raises:
        DERError: The header is malformed or declares more bytes than there are.
    """
    tag, content_start, end = read_header(data, offset)
    return Element(tag, data, offset, content_start, end, 0, max_depth)


def read_single(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Element:
    """Read exactly one element that spans the whole buffer.

    Args:
        data: The buffer.
        max_depth: How deep :meth:`Element.children` may descend.

    Returns:
        The element.

    Raises:
        DERError: Malformed, truncated, or followed by trailing bytes.
    """
    element = read_element(data, max_depth=max_depth)
    if element.end != len(data):
        raise DERError(f"{len(data) - element.end} trailing bytes after the {element.name}")
    return element


def looks_like_asn1_sequence(data: bytes) -> bool:
    """Whether ``data`` is one ASN.1 SEQUENCE whose header declares exactly its length.

    Only the header is read: this tells a binary answer from a text one, it does not parse it.

    Args:
        data: The bytes.

    Returns:
        True when the first header declares exactly ``len(data)`` bytes, or opens a BER
        indefinite-length SEQUENCE (some PKCS#7 writers emit one) that ends in end-of-contents
        octets.
    """
    if data[:1] != b"\x30":
        return False
    if data[1:2] == b"\x80":
        return len(data) >= 4 and data.endswith(b"\x00\x00")
    try:
        _, _, end = read_header(data)
    except DERError:
        return False
    return end == len(data)


def trusted_bounds(der: bytes, offset: int) -> tuple[int, int]:
    """Where the content of the element at ``offset`` starts and ends, without any check.

    Only for DER that cryptography has already parsed as a certificate, whose structure is known
    to be sound: nothing is checked against the bytes available (an IndexError or a wrong offset
    is all a lie could cause, and callers catch the first).

    Args:
        der: A certificate's DER.
        offset: Where the element starts.

    Returns:
        ``(content_start, content_end)``.
    """
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    if first == 0x82:  # the usual long form, read without a slice (a third of the cost)
        return offset + 4, offset + 4 + (der[offset + 2] << 8 | der[offset + 3])
    start = offset + 2 + (first & 0x7F)
    return start, start + int.from_bytes(der[offset + 2 : start], "big")
