"""One collected order on disk: ``DIR/ORDER/`` with its PEM files, the payload and ``meta.json``.

The layout the ``smime-collect collect`` command writes::

    DIR/ORDER/cert.pem        the end entity
              chain.pem       the intermediates, issuer of the end entity first (may be empty)
              fullchain.pem   end entity + intermediates: what a mail server is configured with
              root.pem        the self-signed root(s), only when the response carried one
              payload.<ext>   the certificate data exactly as received; <ext> says what it holds
              meta.json       order number, status, serial, subject, e-mail addresses, validity,
                              SHA-256 fingerprint, and whether a bundle was written
              bundle.p12      with --keys: the certificate, its private key and the intermediates
              p12-password.txt  the bundle's new random password (unless --p12-password-file)

Every file is written atomically: a temporary file in the same directory, flushed to disk, then
``os.replace``d over the final name, so a crash or Ctrl-C never leaves a half-written certificate.
``meta.json`` is written last and is what marks an order as collected: its presence makes the next
run skip the order.

Certificates are public: these files are created with mode 0644 less the umask, as ``cp`` or
``openssl`` would create them, so a mail gateway running as another user can read them (a umask
of 077 keeps them to their owner).  Private material is created 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from .._certs import CertificateChain, email_addresses, identify_payload, rfc4514, serial_number
from ._keys import BundleOutcome, BundleSettings

if TYPE_CHECKING:
    from .._models import CollectResult

__all__ = [
    "BUNDLE_FILE",
    "META_FILE",
    "PASSWORD_FILE",
    "PRIVATE_MODE",
    "PUBLIC_MODE",
    "Written",
    "atomic_write",
    "certificate_facts",
    "order_directory",
    "payload_format",
    "read_meta",
    "sha256_fingerprint",
    "write_order_files",
]

META_FILE = "meta.json"
BUNDLE_FILE = "bundle.p12"
PASSWORD_FILE = "p12-password.txt"  # noqa: S105 -- a file name
# Certificates are public; keys and passwords are not (the umask still applies to both).
PUBLIC_MODE = 0o644
PRIVATE_MODE = 0o600
# O_EXCL: never open a file someone else placed under the temporary name (a symlink included).
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def order_directory(out: Path, order_number: int) -> Path:
    """The directory that holds one order's files.

    Args:
        out: The output directory given with ``--out``.
        order_number: The order.

    Returns:
        ``out / str(order_number)``.
    """
    return out / str(order_number)


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The temporary file lives in the same directory (``os.replace`` is only atomic within one
    file system) and is flushed to disk before the rename, so a crash cannot leave an empty file
    under the final name.  It is created with its final mode, so there is no moment at which
    private material is readable by others.

    Args:
        path: The final file name; its directory must exist.
        data: The complete contents.
        private: Create the file 0600 (keys, passwords); otherwise 0644 less the umask.

    Raises:
        OSError: The file could not be written; no temporary file is left behind.
    """
    temporary, fd = _create_temporary(path, PRIVATE_MODE if private else PUBLIC_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _create_temporary(path: Path, mode: int) -> tuple[Path, int]:
    # tempfile.mkstemp always creates 0600 and has no mode argument; os.open applies the umask
    # to the mode given, which is what public files should get.
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, _CREATE_FLAGS, mode)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {str(path)!r}")


def payload_format(payload: bytes) -> tuple[str, str]:
    """Name what a payload holds, as the certificate loader reads it (not the Content-Type).

    Args:
        payload: The certificate data as received.

    Returns:
        ``(extension, description)``, e.g. ``(".p7b", "PKCS#7 SignedData, DER")`` or
        ``(".p7b.b64", "PKCS#7 SignedData, base64")``.
    """
    found = identify_payload(payload)
    return found.extension, found.description


def sha256_fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` prints it.

    Args:
        certificate: Any certificate.

    Returns:
        Upper-case hex byte pairs joined by colons.
    """
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_facts(certificate: x509.Certificate) -> dict[str, Any]:
    """The facts about one certificate that ``meta.json`` and ``inspect --json`` report.

    Args:
        certificate: Any certificate.

    Returns:
        serial (upper-case hex), subject, issuer (RFC 4514), email_addresses, not_before,
        not_after (ISO 8601, UTC) and sha256_fingerprint.
    """
    return {
        # Not certificate.serial_number: it warns for a negative serial, and this runs in a
        # worker thread, where no warning filter can be changed safely.
        "serial": format(serial_number(certificate), "X"),
        "subject": rfc4514(certificate, "subject"),
        "issuer": rfc4514(certificate, "issuer"),
        "email_addresses": list(email_addresses(certificate)),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "sha256_fingerprint": sha256_fingerprint(certificate),
    }


@attrs.frozen
class Written:
    """What ``write_order_files`` wrote.

    Attributes:
        directory: The order's directory.
        bundle: What ``--keys`` did, or None without it.
    """

    directory: Path
    bundle: BundleOutcome | None = None


def write_bundle(
    directory: Path, chain: CertificateChain, bundles: BundleSettings
) -> BundleOutcome:
    """Write ``bundle.p12`` (and a new ``p12-password.txt``) when a key matches the end entity.

    Both files are private (0600) and written atomically; a stale password file of an earlier
    run is removed when the password now comes from ``--p12-password-file``.

    Args:
        directory: The order's directory (it exists).
        chain: The collected chain.
        bundles: The keys and the bundle settings.

    Returns:
        What was written, or why nothing was.

    Raises:
        OSError: A file could not be written; no partial bundle is left behind.
    """
    key = None if chain.end_entity is None else bundles.keys.key_for(chain.end_entity)
    if key is None:
        return BundleOutcome(note=bundles.keys.no_match_note())
    password = bundles.password
    password_file = None
    if password is None:
        password = secrets.token_urlsafe(18).encode("ascii")
        password_file = PASSWORD_FILE
    data = chain.to_pkcs12(key, password=password, legacy=bundles.legacy)
    if password_file is not None:
        atomic_write(directory / password_file, password + b"\n", private=True)
    else:
        (directory / PASSWORD_FILE).unlink(missing_ok=True)
    atomic_write(directory / BUNDLE_FILE, data, private=True)
    return BundleOutcome(file=BUNDLE_FILE, password_file=password_file)


def write_order_files(
    out: Path, result: CollectResult, bundles: BundleSettings | None = None
) -> Written:
    """Write one ATTACHED result to ``out/ORDER/``, each file atomically, ``meta.json`` last.

    Args:
        out: The output directory; created when missing.
        result: A result whose ``chain`` is set.
        bundles: With ``--keys``: write ``bundle.p12`` when a key matches the end entity.

    Returns:
        The order's directory, and what ``--keys`` did.

    Raises:
        ValueError: The result carries no certificates (status PROCESSING or AVAILABLE).
        OSError: A file could not be written.
    """
    chain = result.chain
    if chain is None:
        raise ValueError(f"order {result.order_number} has no certificates to write")
    directory = order_directory(out, result.order_number)
    directory.mkdir(parents=True, exist_ok=True)
    files = _certificate_files(chain)
    extension, description = payload_format(result.payload)
    payload_name = f"payload{extension}"
    files[payload_name] = result.payload
    # A re-collection (--force) may bring a different payload form: drop a stale sibling.
    for stale in directory.glob("payload.*"):
        if stale.name != payload_name:
            stale.unlink()
    if not chain.roots:
        (directory / "root.pem").unlink(missing_ok=True)
    for name, data in files.items():
        atomic_write(directory / name, data)
    bundle = None if bundles is None else write_bundle(directory, chain, bundles)
    meta = _meta(result, chain.end_entity, {"file": payload_name, "format": description})
    written = [*files, META_FILE]
    if bundle is not None:
        # Never the password: only whether a bundle exists and where its password is.
        meta["bundle"] = attrs.asdict(bundle)
        written.extend(name for name in (bundle.file, bundle.password_file) if name)
    meta["files"] = sorted(written)
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    atomic_write(directory / META_FILE, text.encode("utf-8"))
    return Written(directory, bundle)


def _certificate_files(chain: CertificateChain) -> dict[str, bytes]:
    """The PEM files of a chain: cert, chain and fullchain, and root when it has roots."""
    files: dict[str, bytes] = {}
    end_entity = chain.end_entity
    if end_entity is not None:
        files["cert.pem"] = end_entity.public_bytes(Encoding.PEM)
    files["chain.pem"] = chain.chain_pem
    files["fullchain.pem"] = chain.fullchain_pem
    if chain.roots:
        files["root.pem"] = b"".join(root.public_bytes(Encoding.PEM) for root in chain.roots)
    return files


def _meta(
    result: CollectResult, end_entity: x509.Certificate | None, payload: dict[str, str]
) -> dict[str, Any]:
    """``meta.json``'s facts of an order, before its bundle and file list."""
    meta: dict[str, Any] = {"order_number": result.order_number, "status": result.status.name}
    if end_entity is not None:
        meta.update(certificate_facts(end_entity))
    if result.validity is not None:
        meta["reported_validity"] = {
            "not_before": result.validity.not_before.isoformat(),
            "not_after": result.validity.not_after.isoformat(),
        }
    meta["payload"] = {**payload, "bytes": len(result.payload)}
    return meta


def read_meta(directory: Path) -> dict[str, Any] | None:
    """The ``meta.json`` of an order already collected, or None when there is none.

    Args:
        directory: The order's directory.

    Returns:
        The parsed object; ``{}`` when the file exists but is not a JSON object (it still marks
        the order as collected: it is only ever written last, atomically).
    """
    path = directory / META_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:  # damaged, but there: the order was collected
        return {}
    try:
        meta = json.loads(text)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}
