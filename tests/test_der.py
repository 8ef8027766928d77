"""Tests for the strict DER reader behind the Netscape and CMMF loaders."""

from __future__ import annotations

import pytest

from smime_collect._certs._der import (
    DEFAULT_MAX_DEPTH,
    DERError,
    looks_like_asn1_sequence,
    read_element,
    read_header,
    read_single,
    tag_name,
    trusted_bounds,
)


def _nested(depth: int) -> bytes:
    """A SEQUENCE nested ``depth`` levels deep around a NULL."""
    data = b"\x05\x00"
    for _ in range(depth):
        data = bytes((0x30, len(data))) + data if len(data) < 0x80 else _long(0x30, data)
    return data


def _long(tag: int, content: bytes) -> bytes:
    size = (len(content).bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + len(content).to_bytes(size, "big") + content


class TestReadHeader:
    """read_header decodes identifiers and lengths and checks them against the buffer."""

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            pytest.param(b"\x05\x00", (0x05, 2, 2), id="empty-content"),
            pytest.param(b"\x04\x03abc", (0x04, 2, 5), id="short-form"),
            pytest.param(b"\x04\x81\x03abc", (0x04, 3, 6), id="long-form-non-minimal"),
            pytest.param(b"\x30\x82\x00\x01\x00", (0x30, 4, 5), id="two-length-octets"),
        ],
    )
    def test_valid_headers(self, data: bytes, expected: tuple[int, int, int]) -> None:
        """Definite lengths in short and long form give the content's offsets."""
        assert read_header(data) == expected

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            pytest.param(b"", "truncated element header", id="empty"),
            pytest.param(b"\x30", "truncated element header", id="tag-only"),
            pytest.param(b"\x1f\x81\x00", "multi-octet tag", id="high-tag-number"),
            pytest.param(b"\x30\x80\x00\x00", "indefinite length", id="ber-indefinite"),
            pytest.param(b"\x30\x85\x01\x02\x03\x04\x05", "too large", id="five-length-octets"),
            pytest.param(b"\x30\x82\x01", "truncated length", id="cut-in-length"),
            pytest.param(b"\x30\x05abc", "declares 5 bytes but only 3 remain", id="short-content"),
            pytest.param(
                b"\x30\x84\xff\xff\xff\xff", "declares 4294967295 bytes", id="huge-declared"
            ),
        ],
    )
    def test_malformed_headers(self, data: bytes, message: str) -> None:
        """Every malformation is a DERError that says what was wrong."""
        with pytest.raises(DERError, match=message):
            read_header(data)

    def test_end_bounds_the_content(self) -> None:
        """A length that fits the buffer but not the enclosing element is refused."""
        with pytest.raises(DERError, match="only 1 remain"):
            read_header(b"\x04\x02ab", 0, 3)

    def test_der_error_is_a_value_error(self) -> None:
        """Callers catching ValueError (like cryptography's) also catch DERError."""
        assert issubclass(DERError, ValueError)


class TestElement:
    """Elements expose their bytes and children without copying the buffer."""

    def test_children_and_content(self) -> None:
        """A SEQUENCE's children fill its content exactly, in order."""
        data = b"\x30\x06\x02\x01\x05\x04\x01x"
        element = read_single(data)
        assert element.constructed
        assert element.name == "SEQUENCE"
        children = element.children()
        assert [c.tag for c in children] == [0x02, 0x04]
        assert children[0].content == b"\x05"
        assert children[1].encoded == b"\x04\x01x"
        assert children[1].depth == 1

    def test_primitive_has_no_children(self) -> None:
        """Asking a primitive element for children is an error, not an empty tuple."""
        with pytest.raises(DERError, match="primitive"):
            read_single(b"\x04\x01x").children()

    def test_children_must_fill_the_content(self) -> None:
        """A child running past its parent's content is refused."""
        with pytest.raises(DERError, match="remain"):
            read_single(b"\x30\x03\x04\x05x").children()

    def test_depth_limit(self) -> None:
        """Descending past max_depth raises instead of recursing without bound."""
        element = read_single(_nested(DEFAULT_MAX_DEPTH + 5))
        for _ in range(DEFAULT_MAX_DEPTH):
            element = element.children()[0]
        assert element.depth == DEFAULT_MAX_DEPTH
        with pytest.raises(DERError, match="nesting deeper than"):
            element.children()

    def test_depth_limit_is_configurable(self) -> None:
        """A smaller max_depth stops earlier."""
        element = read_single(_nested(3), max_depth=1)
        child = element.children()[0]
        with pytest.raises(DERError, match="deeper than 1"):
            child.children()

    def test_trailing_bytes_refused_by_read_single(self) -> None:
        """read_single wants exactly one element."""
        with pytest.raises(DERError, match="2 trailing bytes"):
            read_single(b"\x05\x00\x05\x00")

    def test_read_element_ignores_what_follows(self) -> None:
        """read_element reads one element and leaves the rest."""
        assert read_element(b"\x05\x00\x05\x00", 2).end == 4


class TestShortcutHelpers:
    """The header helpers for known-good DER and for sniffing a body."""

    @pytest.mark.parametrize(
        ("data", "bounds"),
        [
            pytest.param(b"\x04\x03abc", (2, 5), id="short"),
            pytest.param(b"\x30\x81\x80" + bytes(128), (3, 131), id="one-length-octet"),
            pytest.param(b"\x30\x82\x01\x00" + bytes(256), (4, 260), id="two-length-octets"),
            pytest.param(
                b"\x30\x83\x01\x00\x00" + bytes(65536), (5, 65541), id="three-length-octets"
            ),
        ],
    )
    def test_trusted_bounds(self, data: bytes, bounds: tuple[int, int]) -> None:
        """trusted_bounds gives what read_header gives on sound DER."""
        assert trusted_bounds(data, 0) == bounds == read_header(data)[1:]

    def test_sequence_spanning_the_body(self) -> None:
        """Only one SEQUENCE whose header declares exactly the body counts (BER: its EOC)."""
        assert looks_like_asn1_sequence(b"\x30\x03\x02\x01\x05")
        assert looks_like_asn1_sequence(b"\x30\x80\x02\x01\x05\x00\x00")
        assert not looks_like_asn1_sequence(b"\x30\x03\x02\x01\x05\x00")
        assert not looks_like_asn1_sequence(b"\x30\x85\x01\x00\x00\x00\x00")
        assert not looks_like_asn1_sequence(b"0\n")


class TestTagName:
    """tag_name makes messages readable."""

    @pytest.mark.parametrize(
        ("tag", "name"),
        [
            (0x30, "SEQUENCE"),
            (0x06, "OBJECT IDENTIFIER"),
            (0xA0, "[0] constructed"),
            (0x81, "[1] primitive"),
            (0x1E, "tag 0x1e"),
        ],
        ids=["sequence", "oid", "context-0", "context-1-primitive", "unknown"],
    )
    def test_names(self, tag: int, name: str) -> None:
        """Universal tags get their ASN.1 name, context tags their number."""
        assert tag_name(tag) == name
