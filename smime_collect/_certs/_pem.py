"""SANS-I/O: find PEM blocks in text, tolerantly and in linear time.

The endpoint's own documentation prints its markers as ``----- BEGIN CERTIFICATE -----`` and ends
the last block with a four-dash ``---- END CERTIFICATE -----`` line, and a public client had to
normalise marker dashes for real bodies (DOMAIN.md, "The response"): markers are found by a
pattern that tolerates spaces and any run of three or more dashes, under any label.

Markers are located with ``bytes.find`` and a look behind for the dashes, then an anchored,
bounded regular expression for the rest of the line: a regular expression *searching* for
``-{3,}...BEGIN`` backtracks quadratically on long runs of dashes.
"""

from __future__ import annotations

import binascii
import re
from typing import NamedTuple

from .._exceptions import CertificateFormatError

__all__ = [
    "WHITESPACE",
    "PemBlockName",
    "decode_base64",
    "find_begin",
    "find_end_marker",
    "standard_certificate_bodies",
    "strip_pem_headers",
]

WHITESPACE = b" \t\r\n\v\f"
_DASHES = b"-----"
_BEGIN_CERTIFICATE = b"BEGIN CERTIFICATE"
_END_CERTIFICATE = b"END CERTIFICATE"
_BEGIN_TAIL = re.compile(rb"[ \t]+([A-Za-z0-9 #._/-]{0,64}?)[ \t]*-{3,}")


class PemBlockName(NamedTuple):
    """Names a PEM block in messages ("PEM block 2 (CERTIFICATE) of input").

    A tuple, formatted only when an error needs the text: building the string for every block
    would cost more than finding it.
    """

    number: int
    label: bytes
    source: object

    def __str__(self) -> str:
        label = self.label.decode("ascii", "replace") or "no label"
        return f"PEM block {self.number} ({label}) of {self.source}"


def find_begin(raw: bytes, start: int) -> re.Match[bytes] | None:
    """The next BEGIN line after ``start``.

    Linear in the input: each "BEGIN" is looked at once, with bounded work around it.

    Args:
        raw: The text.
        start: Where to look from.

    Returns:
        The match of the rest of the line (the label is group 1, ``end()`` is where the body
        starts), or None.
    """
    while (found := raw.find(b"BEGIN", start)) >= 0:
        if _dashes_before(raw, found, start) is not None:
            match = _BEGIN_TAIL.match(raw, found + 5)
            if match is not None:
                return match
        start = found + 5
    return None


def find_end_marker(raw: bytes, start: int) -> int | None:
    """Where the END line after ``start`` begins.

    "END" inside base64 is never preceded by dashes, so a look behind tells the marker apart.

    Args:
        raw: The text.
        start: Where the block's body starts.

    Returns:
        The offset of the dashes that open the END line, or None when there is none.
    """
    while (found := raw.find(b"END", start)) >= 0:
        if (dashes := _dashes_before(raw, found, start)) is not None:
            while dashes > start and raw[dashes - 1] == 0x2D:
                dashes -= 1
            return dashes
        start = found + 3
    return None


def _dashes_before(raw: bytes, found: int, start: int) -> int | None:
    # The look behind of find_begin and find_end_marker: "---", then blanks, then the keyword
    # at ``found``; returns where the blanks begin (the dashes end), never looking before start.
    dashes = found
    while dashes > start and raw[dashes - 1] in b" \t":
        dashes -= 1
    if raw[max(start, dashes - 3) : dashes] == b"---":
        return dashes
    return None


def standard_certificate_bodies(raw: bytes, max_blocks: int) -> list[bytes] | None:
    """The bodies of RFC 7468 ``CERTIFICATE`` blocks, when that is all the text holds.

    The common case (what CollectSMIME sends for responseType 3, what OpenSSL writes) is read with
    one ``bytes.split`` instead of a marker scan: each 5-dash run cuts the text, so standard PEM
    splits into ``[space, "BEGIN CERTIFICATE", body, "END CERTIFICATE", space, ...]``.  Anything
    else - other labels, text around the blocks, the endpoint page's sloppy markers, more than
    ``max_blocks`` blocks - gives None and is left to :func:`find_begin`, which reads it the same
    way, only slower.

    Args:
        raw: The text.
        max_blocks: The most blocks accepted (the split list stays bounded by it).

    Returns:
        The text between each block's markers (whitespace included), or None.
    """
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


def strip_pem_headers(body: bytes) -> bytes:
    """Drop RFC 1421 header lines ("Proc-Type: ...") that may precede a PEM body.

    Args:
        body: The text between the markers.

    Returns:
        The body without lines that contain a colon.
    """
    lines = body.splitlines()
    kept = [line for line in lines if b":" not in line]
    return b"\n".join(kept)


def decode_base64(body: bytes, where: object) -> bytes:
    """Strict base64 of a PEM body, whitespace ignored; ``where`` names it in errors.

    Args:
        body: The text between the markers.
        where: What to call it in a message.

    Returns:
        The binary content.

    Raises:
        CertificateFormatError: The body is empty or not valid base64.
    """
    compact = body.translate(None, WHITESPACE)
    if not compact:
        raise CertificateFormatError(f"{where} is empty")
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise CertificateFormatError(f"{where} is not valid base64 ({exc})") from None
