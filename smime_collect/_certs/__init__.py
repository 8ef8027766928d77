"""SANS-I/O certificate layer: any format CollectSMIME sends in, a classified chain out.

Modules, from the bytes up:

- ``_der``: a strict, bounded DER reader (definite lengths, depth-limited);
- ``_pem``: the tolerant PEM marker scanner and the standard-PEM shortcut;
- ``_zip``: ZIP archives, with caps checked before anything is inflated;
- ``_facts``: what classification reads from one certificate, straight from its DER;
- ``_chain``: classification into end entity, intermediates and roots (``CertificateChain``);
- ``_load``: format sniffing and ``load_certificates``.

Nothing here imports httpx or asyncio, reads a clock or sleeps; the import contract in
``pyproject.toml`` keeps it so.
"""

from ._chain import CertificateChain
from ._facts import email_addresses, rfc4514
from ._load import load_certificates

__all__ = ["CertificateChain", "email_addresses", "load_certificates", "rfc4514"]
