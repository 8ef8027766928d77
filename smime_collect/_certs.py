"""SANS-I/O: certificate data in any CollectSMIME format, into a classified chain.

PLACEHOLDER: a minimal loader (PEM and DER only) until the certificate layer lands.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._exceptions import CertificateFormatError

__all__ = ["CertificateChain", "load_certificates"]


@attrs.frozen
class CertificateChain:
    """Certificates sorted into end entity, intermediates and roots."""

    end_entity: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __iter__(self) -> Iterator[x509.Certificate]:
        if self.end_entity is not None:
            yield self.end_entity
        yield from self.intermediates
        yield from self.roots

    def to_pem(self, include_root: bool = False) -> bytes:
        """End entity and intermediates (and roots when asked) as PEM."""
        certs = [self.end_entity, *self.intermediates, *(self.roots if include_root else ())]
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs if c)


def load_certificates(data: bytes | str) -> CertificateChain:
    """Load certificate data (placeholder: PEM or DER)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        certs = (
            x509.load_pem_x509_certificates(raw)
            if b"-----BEGIN" in raw
            else [x509.load_der_x509_certificate(raw)]
        )
    except ValueError as exc:
        raise CertificateFormatError(f"not certificate data: {exc}") from None
    return CertificateChain(certs[-1], tuple(certs[:-1]))
