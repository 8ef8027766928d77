"""SANS-I/O: the members of a ZIP archive (CollectSSL's responseType 0), within caps.

A hostile archive must cost bounded time and memory: the entry count is read from the End Of
Central Directory record before zipfile parses the directory, the declared sizes are checked
before anything is inflated, only stored and deflate members are read, and no member is inflated
past the budget left, whatever its header claims.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import TypeVar

from .._exceptions import CertificateFormatError

__all__ = ["ZIP_MAGIC", "load_zip_members"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

# What zipfile raises on a damaged or hostile archive (lying offsets give ValueError from seek).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    EOFError,
    ValueError,
    OverflowError,
    OSError,
)

_Item = TypeVar("_Item")


def load_zip_members(
    raw: bytes,
    source: str,
    *,
    max_size: int,
    max_entries: int,
    load_member: Callable[[bytes, str], list[_Item]],
) -> list[_Item]:
    """Load every member of a ZIP archive: caps checked on the central directory, then inflating.

    Args:
        raw: The archive.
        source: What to call it in messages.
        max_size: The most bytes all members may unpack to.
        max_entries: The most entries the archive may have.
        load_member: Loads one member's content, given as ``(content, name)``; a
            CertificateFormatError from it skips the member.

    Returns:
        What ``load_member`` returned for each member, concatenated.

    Raises:
        CertificateFormatError: Over a cap, unreadable, or no member held a certificate.
    """
    _check_entry_count(_declared_zip_entries(raw), source, max_entries)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = archive.infolist()
            _check_caps(entries, source, max_size=max_size, max_entries=max_entries)
            loaded = _inflate_members(archive, entries, source, max_size, load_member)
    except _ZIP_ERRORS as exc:
        raise CertificateFormatError(f"{source}: an unreadable ZIP archive ({exc})") from None
    if not loaded:
        raise CertificateFormatError(
            f"{source}: a ZIP of {len(entries)} entries, none holding a certificate"
        )
    return loaded


def _check_caps(
    entries: list[zipfile.ZipInfo], source: str, *, max_size: int, max_entries: int
) -> None:
    """Refuse, before anything is inflated, what the central directory says is too much."""
    _check_entry_count(len(entries), source, max_entries)
    declared = sum(entry.file_size for entry in entries)
    if declared > max_size:
        raise CertificateFormatError(
            f"{source}: a ZIP that unpacks to {declared} bytes, more than the "
            f"{max_size} accepted; not unpacked"
        )
    for entry in entries:
        # Stored and deflate only (what Sectigo's archives use): bzip2 and LZMA decoders raise
        # their own exceptions, and an LZMA header alone makes zipfile allocate a dictionary of
        # up to 4 GiB before a byte is read.
        if entry.compress_type not in _ZIP_METHODS:
            raise CertificateFormatError(
                f"{source}: ZIP member {entry.filename!r} uses compression method "
                f"{entry.compress_type}; only stored and deflate members are read, "
                "so the archive is not unpacked"
            )


def _check_entry_count(count: int | None, source: str, max_entries: int) -> None:
    if count is not None and count > max_entries:
        raise CertificateFormatError(
            f"{source}: a ZIP of {count} entries, more than the {max_entries} accepted; "
            "not unpacked"
        )


def _inflate_members(
    archive: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    source: str,
    max_size: int,
    load_member: Callable[[bytes, str], list[_Item]],
) -> list[_Item]:
    """Inflate and load each member, never past the size budget left, whatever headers claim."""
    loaded: list[_Item] = []
    budget = max_size
    for entry in entries:
        if entry.is_dir():
            continue
        with archive.open(entry) as member:
            # Headers can lie: never inflate more than the budget left, plus one byte to notice
            # the overrun.
            content = member.read(budget + 1)
        if len(content) > budget:
            raise CertificateFormatError(
                f"{source}: ZIP member {entry.filename!r} inflates past the "
                f"{max_size} bytes accepted"
            )
        budget -= len(content)
        if not content.strip():
            continue
        try:
            loaded += load_member(content, f"ZIP member {entry.filename!r}")
        except CertificateFormatError:
            continue  # members that hold no certificate are skipped
    return loaded


def _declared_zip_entries(raw: bytes) -> int | None:
    """The entry count of the End Of Central Directory record, read before zipfile parses it all."""
    # EOCD (APPNOTE 4.3.16): signature PK\5\6, ..., total entries (2 bytes) at offset 10; it sits
    # in the last 22 bytes plus a comment of at most 65535 bytes.
    eocd = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 22 - 0xFFFF))
    if eocd < 0 or eocd + 22 > len(raw):
        return None
    count = int.from_bytes(raw[eocd + 10 : eocd + 12], "little")
    return None if count == 0xFFFF else count  # 0xFFFF: see the ZIP64 record (zipfile reads it)
