"""PKCS#12 bundles for mail clients, and the private keys that go in them.  No I/O.

A collected S/MIME certificate is useless without the private key made when the order was placed;
what a user imports into Outlook, Thunderbird or Apple Mail is one PKCS#12 file holding both, with
the intermediates.  Importers disagree about encryption (RFC 7292 leaves it open):

- ``modern`` (the default): PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC for the key and the
  certificates, an HMAC-SHA256 MAC (RFC 8018, RFC 9579) — what OpenSSL 3 writes by default and what
  current Windows, macOS, Thunderbird and OpenSSL read;
- ``legacy``: PBES1 with SHA-1 and 3-key triple DES, an HMAC-SHA1 MAC — for importers that read
  nothing else (Windows before 10 1709, older macOS keychains).

Keys are matched to certificates by their public key (the DER SubjectPublicKeyInfo), never by file
name.
"""

import hashlib
from collections.abc import Sequence
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .._exceptions import InvalidRequestError

__all__ = [
    "PrivateKey",
    "bundle",
    "encryption_for",
    "load_private_key",
    "looks_like_encrypted_key",
    "public_key_id",
]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)
_KEY_TYPES: Final = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)

# PBKDF2 iterations.  OpenSSL 3 writes 2048 for both the key and the MAC; more only slows imports
# on old phones without stopping an offline guess at a weak password, so match it.
_KDF_ROUNDS: Final = 2048

# A private key file is a few kilobytes; anything far larger is not one.
MAX_KEY_FILE_BYTES: Final = 1024 * 1024


def encryption_for(password: object, *, legacy: bool) -> serialization.KeySerializationEncryption:
    """The PKCS#12 encryption for ``password``: modern (AES-256, PBKDF2) or legacy (3DES, SHA-1).

    Args:
        password: The bundle's password, non-empty bytes.
        legacy: Write 3DES/SHA-1 for importers that read nothing newer.

    Returns:
        The encryption to pass to ``pkcs12.serialize_key_and_certificates``.

    Raises:
        InvalidRequestError: The password is not non-empty bytes.
    """
    if not isinstance(password, bytes):
        raise InvalidRequestError(
            f"password must be bytes, not {type(password).__name__}: encode it, e.g. "
            "password='...'.encode()"
        )
    if not password:
        raise InvalidRequestError(
            "password is empty: a PKCS#12 bundle holds a private key, give it a password"
        )
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(_KDF_ROUNDS)
    mac: hashes.HashAlgorithm
    if legacy:
        # 3DES with a SHA-1 MAC: the format older importers read, asked for by name.
        algorithm, mac = pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()  # noqa: S303
    else:
        algorithm, mac = pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()
    builder = builder.key_cert_algorithm(algorithm).hmac_hash(mac)
    return builder.build(password)


def bundle(
    end_entity: x509.Certificate,
    key: object,
    cas: Sequence[x509.Certificate],
    *,
    password: object,
    friendly_name: bytes | None,
    legacy: bool,
    name: str = "the end entity",
) -> bytes:
    """The PKCS#12 bytes of a certificate, its private key and its CA certificates.

    Args:
        end_entity: The certificate the key belongs to.
        key: Its private key.
        cas: The CA certificates to add (intermediates, and roots if wanted).
        password: Non-empty bytes.
        friendly_name: The name importers show for the key and certificate, if any.
        legacy: 3DES/SHA-1 instead of AES-256/PBKDF2.
        name: How messages name the certificate (its common name, say).

    Returns:
        The PKCS#12 (PFX) bytes.

    Raises:
        InvalidRequestError: The key is not a private key, does not match the certificate, or
            the password or friendly name is unusable.
    """
    if not isinstance(key, _KEY_TYPES):
        raise InvalidRequestError(
            f"key must be a private key object (e.g. from load_pem_private_key), not "
            f"{type(key).__name__}"
        )
    encryption = encryption_for(password, legacy=legacy)
    if friendly_name is not None and not isinstance(friendly_name, bytes):
        raise InvalidRequestError(
            f"friendly_name must be bytes or None, not {type(friendly_name).__name__}"
        )
    if not key_matches(key, end_entity):
        raise InvalidRequestError(
            f"the private key does not match the public key of {name}: use the key made for "
            "this order (the one its certificate request was signed with)"
        )
    return pkcs12.serialize_key_and_certificates(
        friendly_name, key, end_entity, list(cas) or None, encryption
    )


UNPARSABLE_PUBLIC_KEY = (ValueError, UnsupportedAlgorithm)
"""What ``public_key_id`` raises for a certificate whose public key cryptography cannot read."""


class _HasPublicKey(Protocol):
    def public_key(self) -> Any: ...


def public_key_id(key: _HasPublicKey) -> bytes:
    """The SHA-256 of the DER SubjectPublicKeyInfo of a private key or a certificate.

    A key and a certificate belong together exactly when their ids are equal.

    Args:
        key: A private key (of any type), or a certificate.

    Returns:
        32 bytes.

    Raises:
        ValueError: The certificate's public key cannot be parsed.
        UnsupportedAlgorithm: The certificate's key is of a type cryptography does not know
            (``ValueError`` instead before cryptography 47): catch ``UNPARSABLE_PUBLIC_KEY``.
    """
    public = key.public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def key_matches(key: _HasPublicKey, certificate: x509.Certificate) -> bool:
    """Whether ``key`` is the private key of ``certificate``.

    Args:
        key: A private key.
        certificate: A certificate; one whose public key cryptography cannot read matches no key.

    Returns:
        True when their public keys are the same.
    """
    try:
        return public_key_id(key) == public_key_id(certificate)
    except UNPARSABLE_PUBLIC_KEY:
        return False


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Read a private key in any common form: PEM or DER, PKCS#8 or traditional, encrypted or not.

    Args:
        data: The key file's bytes.
        password: The key's password, for an encrypted key (ignored for a plain one).

    Returns:
        The key.

    Raises:
        InvalidRequestError: The data holds no private key this library can use, or it is
            encrypted and the password is missing or wrong; the message says which.
    """
    if len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidRequestError(
            f"{len(data)} bytes is too large for a private key file (limit {MAX_KEY_FILE_BYTES})"
        )
    pem = b"-----BEGIN" in data
    encrypted = _looks_encrypted(data, pem=pem)
    if encrypted and password is None:
        raise InvalidRequestError(
            "the private key is encrypted: give its password (--key-password-file)"
        )
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        # A password given for a plain key is not an error: one password serves a whole directory.
        key = loader(data, password if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidRequestError(_why_unreadable(exc, encrypted=encrypted)) from None
    if not isinstance(key, _KEY_TYPES):
        raise InvalidRequestError(f"a {type(key).__name__} cannot sign S/MIME mail")
    return key


def looks_like_encrypted_key(data: bytes) -> bool:
    """Whether ``data`` looks like an encrypted private key (PEM or DER PKCS#8).

    Args:
        data: A file's bytes.

    Returns:
        True for PEM with an ENCRYPTED header or label, or DER EncryptedPrivateKeyInfo.
    """
    return _looks_encrypted(data, pem=b"-----BEGIN" in data)


def _looks_encrypted(data: bytes, *, pem: bool) -> bool:
    if pem:
        return b"ENCRYPTED" in data  # PKCS#8 "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED"
    # DER PKCS#8 EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID, params }, OCTET STRING }
    # (RFC 5958, section 3); a plain PrivateKeyInfo starts SEQUENCE { INTEGER version ... },
    # and a certificate SEQUENCE { SEQUENCE { [0] version or INTEGER serial ... } }.
    if data[:1] != b"\x30":
        return False
    outer = _after_header(data, 0)
    if outer is None or data[outer : outer + 1] != b"\x30":
        return False
    inner = _after_header(data, outer)
    return inner is not None and data[inner : inner + 1] == b"\x06"


def _after_header(data: bytes, offset: int) -> int | None:
    """The offset just after the tag and length octets of the element at ``offset``."""
    if offset + 1 >= len(data):
        return None
    first = data[offset + 1]
    end = offset + 2 + (first & 0x7F if first & 0x80 else 0)
    return end if end < len(data) else None


def _why_unreadable(exc: Exception, *, encrypted: bool) -> str:
    if isinstance(exc, UnsupportedAlgorithm):
        return f"a private key of an algorithm this library cannot use ({exc})"
    if encrypted:
        return "the private key could not be decrypted: check its password (--key-password-file)"
    return f"not a private key in PEM or DER ({str(exc).split('.')[0] or 'unreadable'})"
