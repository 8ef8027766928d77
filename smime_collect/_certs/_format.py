"""SANS-I/O: what a payload holds, as the loader found it: a container in an encoding.

The names and file extensions are those ``smime-collect collect`` gives a payload on disk
(``payload.p7b``, ``payload.p7b.b64``, ...); the containers are described in
``docs/explanation/formats.md``.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["Container", "PayloadEncoding", "PayloadFormat"]


class Container(enum.StrEnum):
    """The structure that holds the certificates; the value describes it."""

    CERTIFICATE = "X.509 certificate"
    PKCS7 = "PKCS#7 SignedData"
    NETSCAPE = "Netscape certificate sequence"
    CMMF = "CMMF/CMP CertRepContent"
    ZIP = "ZIP archive"


class PayloadEncoding(enum.StrEnum):
    """How the container is written."""

    BINARY = "binary"
    BASE64 = "base64"
    PEM = "PEM"


_EXTENSIONS = {
    Container.CERTIFICATE: ".der",
    Container.PKCS7: ".p7b",
    Container.NETSCAPE: ".nsc",
    Container.CMMF: ".cmmf",
    Container.ZIP: ".zip",
}


@attrs.frozen
class PayloadFormat:
    """What a payload holds, as far as the loader got.

    Attributes:
        container: The first container found (for PEM, in the first block read); None when the
            loader recognised none.
        encoding: How it is written: PEM when there is a PEM block, base64 when the text
            decodes as base64, else binary.
    """

    container: Container | None
    encoding: PayloadEncoding

    @property
    def extension(self) -> str:
        """The file extension: ``.pem``, ``.der``, ``.p7b``, ``.nsc``, ``.cmmf``, ``.zip``.

        ``.b64`` is added for base64 (``.p7b.b64``), and stands alone for base64 of nothing
        recognised; ``.bin`` is for bytes the loader recognised nothing in.
        """
        if self.encoding is PayloadEncoding.PEM:
            return ".pem"
        stem = _EXTENSIONS[self.container] if self.container else ""
        if self.encoding is PayloadEncoding.BASE64:
            return f"{stem}.b64"
        return stem or ".bin"

    @property
    def description(self) -> str:
        """A phrase for reports: ``PKCS#7 SignedData, DER``, ``PEM``, ``ZIP archive``, ..."""
        if self.encoding is PayloadEncoding.PEM:
            return "PEM"
        if self.container is Container.ZIP and self.encoding is PayloadEncoding.BINARY:
            return str(Container.ZIP)
        if self.container is None:
            return "base64" if self.encoding is PayloadEncoding.BASE64 else "unrecognised bytes"
        encoding = "DER" if self.encoding is PayloadEncoding.BINARY else self.encoding
        return f"{self.container}, {encoding}"
