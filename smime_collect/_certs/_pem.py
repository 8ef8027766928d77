"""SANS-I/O: find PEM blocks in text, tolerantly and in linear time.

The endpoint's own documentation prints its markers as ``----- BEGIN CERTIFICATE -----`` and ends
the last block with a four-dash ``---- END CERTIFICATE -----`` line, and a public client had to
normalise marker dashes for real bodies (``docs/reference/endpoint.md``, "Traps"): markers are
found by a pattern that tolerates spaces and any run of three or more dashes, under any label.

Plain standard PEM is cut by a shortcut in :mod:`smime_collect._certs._fast` before this scanner
is asked; it reads the same bodies.

Markers are located with ``bytes.find`` and a look behind for the dashes, then an anchored,
bounded regular expression for the rest of the line: a regular expression *searching* for
``-{3,}...BEGIN`` backtracks quadratically on long runs of dashes.
"""

from __future__ import annotations

import binascii
import re

from .._exceptions import CertificateFormatError

__all__ = [
    "WHITESPACE",
    "block_name",
    "decode_base64",
    "find_begin",
    "find_end_marker",
    "strip_pem_headers",
]

WHITESPACE = b" \t\r\n\v\f"
_BEGIN_TAIL = re.compile(rb"[ \t]+([A-Za-z0-9 #._/-]{0,64}?)[ \t]*-{3,}")


def block_name(number: int, label: bytes, source: str) -> str:
    """How messages name a PEM block: ``PEM block 2 (CERTIFICATE) of input``.

    Args:
        number: The block's number, from 1.
        label: The label of its BEGIN line.
        source: What holds the text.

    Returns:
        The name.
    """
    text = label.decode("ascii", "replace") or "no label"
    return f"PEM block {number} ({text}) of {source}"


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
            dashes -= 3  # the three dashes _dashes_before saw; then any more
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
    if dashes - 3 >= start and raw[dashes - 3 : dashes] == b"---":
        return dashes
    return None


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


def decode_base64(body: bytes, source: str) -> bytes:
    """Strict base64 of a PEM body, whitespace ignored; ``source`` names it in errors.

    Args:
        body: The text between the markers.
        source: What to call it in a message.

    Returns:
        The binary content.

    Raises:
        CertificateFormatError: The body is empty or not valid base64.
    """
    compact = body.translate(None, WHITESPACE)
    if not compact:
        raise CertificateFormatError(f"{source} is empty")
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise CertificateFormatError(f"{source} is not valid base64 ({exc})") from None
