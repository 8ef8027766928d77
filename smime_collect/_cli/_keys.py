"""``collect --keys DIR``: the private keys of a directory, indexed by their public key.

The directory is read once per run, however many orders there are: each file that holds a private
key (PEM or DER, PKCS#8 or traditional, encrypted or not) is indexed by the SHA-256 of its public
key, so a certificate finds its key whatever the file is called.  Files that hold no key are
skipped; keys that cannot be read (a wrong password, say) are remembered, so that an order whose
key was among them can say why no key matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from .._certs import CertificateChain
from .._certs._pkcs12 import (
    MAX_KEY_FILE_BYTES,
    UNPARSABLE_PUBLIC_KEY,
    PrivateKey,
    key_matches,
    load_private_key,
    looks_like_encrypted_key,
    public_key_id,
)
from .._exceptions import CertificateFormatError, InvalidRequestError

__all__ = [
    "Bundle",
    "BundleOutcome",
    "BundleSettings",
    "KeyIndex",
    "looks_like_pkcs12",
    "read_pkcs12",
]

# A key directory is small; this bounds the work a wrong --keys (say, /) can cause.
MAX_KEY_FILES: Final = 100_000

# What a file that may hold a private key starts with: PEM text, or a DER SEQUENCE.
_PEM_KEY_LABELS: Final = (b"PRIVATE KEY-----",)


@attrs.frozen
class KeyIndex:
    """Private keys by the SHA-256 of their public key.

    Attributes:
        keys: Public key id (``public_key_id``) to private key.
        unreadable: The files that looked like keys but could not be read, with why.
    """

    keys: Mapping[bytes, PrivateKey]
    unreadable: tuple[tuple[Path, str], ...] = ()

    @classmethod
    def from_directory(cls, directory: Path, password: bytes | None = None) -> KeyIndex:
        """Index every private key under ``directory`` (subdirectories included).

        Args:
            directory: The directory to read.
            password: The password of the encrypted keys (one for all), if any.

        Returns:
            The index.

        Raises:
            InvalidRequestError: ``directory`` is not a readable directory, or holds too many
                files to be a key directory.
        """
        if not directory.is_dir():
            raise InvalidRequestError(f"--keys {str(directory)!r} is not a directory")
        keys: dict[bytes, PrivateKey] = {}
        unreadable: list[tuple[Path, str]] = []
        try:
            files = sorted(p for p in directory.rglob("*") if p.is_file())
        except OSError as exc:
            raise InvalidRequestError(
                f"--keys {str(directory)!r} cannot be read ({exc.strerror or exc})"
            ) from None
        if len(files) > MAX_KEY_FILES:
            raise InvalidRequestError(
                f"--keys {str(directory)!r} holds {len(files)} files; is it the key directory?"
            )
        for path in files:
            data = _read_small(path)
            if data is None or not _may_hold_key(data):
                continue
            try:
                key = load_private_key(data, password)
            except InvalidRequestError as exc:
                if _is_pem_key(data) or looks_like_encrypted_key(data):
                    unreadable.append((path, str(exc)))
                continue
            keys.setdefault(public_key_id(key), key)
        return cls(keys, tuple(unreadable))

    def no_match_note(self) -> str:
        """Why a certificate found no key here, for the order's report.

        Returns:
            A sentence naming how many keys were read and which files could not be opened.
        """
        note = f"no private key under --keys matches this certificate ({len(self.keys)} read)"
        if self.unreadable:
            names = ", ".join(path.name for path, _ in self.unreadable[:3])
            more = "" if len(self.unreadable) <= 3 else f" and {len(self.unreadable) - 3} more"
            note += f"; could not open {names}{more}: {self.unreadable[0][1]}"
        return note

    def key_for(self, certificate: x509.Certificate) -> PrivateKey | None:
        """The private key whose public key is the certificate's, or None.

        Args:
            certificate: An end-entity certificate.

        Returns:
            The matching key, or None.
        """
        try:
            return self.keys.get(public_key_id(certificate))
        except UNPARSABLE_PUBLIC_KEY:  # a public key cryptography cannot read matches no key
            return None

    def __len__(self) -> int:
        return len(self.keys)


@attrs.frozen
class BundleSettings:
    """What ``collect --keys`` asks: the keys, and how each ``bundle.p12`` is protected.

    Attributes:
        keys: The key directory's index, read once for the whole run.
        password: The bundles' password (``--p12-password-file``); None makes a new random one
            per order, written to ``p12-password.txt``.
        legacy: 3DES/SHA-1 for older importers (``--p12-legacy``).
    """

    keys: KeyIndex
    password: bytes | None = attrs.field(default=None, repr=False)
    legacy: bool = False


@attrs.frozen
class BundleOutcome:
    """What ``--keys`` did for one order.

    Attributes:
        file: The bundle's file name, or None when no key matched.
        password_file: The file holding its new random password, when one was made.
        note: Why there is no bundle (no key matched, and which key files could not be opened).
    """

    file: str | None = None
    password_file: str | None = None
    note: str | None = None


@attrs.frozen
class Bundle:
    """What ``inspect`` found in a PKCS#12 file.

    Attributes:
        chain: Its certificates, classified.
        has_key: Whether it holds a private key.
        key_matches: Whether that key is the end entity's (None without key or end entity).
    """

    chain: CertificateChain
    has_key: bool
    key_matches: bool | None

    def key_line(self) -> str:
        """One line about the private key, for ``inspect``.

        Returns:
            Whether the bundle holds a key and whether it matches the end entity.
        """
        if not self.has_key:
            return "private key: none in this file"
        if self.key_matches is None:
            return "private key: present; no end entity to match it against"
        if self.key_matches:
            return "private key: matches the end entity"
        return "private key: does NOT match the end entity"


def looks_like_pkcs12(data: bytes) -> bool:
    """Whether ``data`` is DER PKCS#12: a SEQUENCE opening with INTEGER 3 (RFC 7292 PFX version).

    Args:
        data: A file's bytes.

    Returns:
        True for a PFX structure.
    """
    if len(data) < 8 or data[0] != 0x30:
        return False
    first = data[1]
    offset = 2 + (first & 0x7F if first & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def read_pkcs12(data: bytes, password: bytes | None) -> Bundle:
    """Open a PKCS#12 file and classify what it holds.

    Args:
        data: The file's bytes.
        password: Its password (``--p12-password-file``), or None to try without one.

    Returns:
        The chain and what is known of the key.

    Raises:
        CertificateFormatError: It cannot be opened (a missing or wrong password, say).
    """
    try:
        loaded = pkcs12.load_pkcs12(data, password)
    except (ValueError, TypeError) as exc:
        hint = (
            "give its password with --p12-password-file"
            if password is None
            else ("check --p12-password-file")
        )
        raise CertificateFormatError(
            f"a PKCS#12 file that cannot be opened ({str(exc).split('.')[0]}): {hint}"
        ) from None
    certificates = [c.certificate for c in (loaded.cert, *loaded.additional_certs) if c]
    chain = CertificateChain.from_certificates(certificates)
    matches = None
    if loaded.key is not None and chain.end_entity is not None:
        matches = key_matches(loaded.key, chain.end_entity)
    return Bundle(chain, loaded.key is not None, matches)


def _read_small(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _is_pem_key(data: bytes) -> bool:
    return any(label in data for label in _PEM_KEY_LABELS)


def _may_hold_key(data: bytes) -> bool:
    return _is_pem_key(data) or data[:1] == b"\x30"
