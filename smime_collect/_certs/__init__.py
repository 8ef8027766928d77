"""SANS-I/O certificate layer: any format CollectSMIME sends in, a classified chain out.

Modules, from the bytes up:

- ``_der``: a strict, bounded DER reader (definite lengths, depth-limited);
- ``_pem``: the tolerant PEM marker scanner;
- ``_zip``: ZIP archives, with caps checked before anything is inflated;
- ``_wrappers``: the Netscape and CMMF wrappers, taken apart with ``_der``;
- ``_x509``: the certificate fields classification and reports need, read with ``_der``;
- ``_names``: names and e-mail addresses for messages and reports, from the DER;
- ``_node``: one certificate as classification sees it, and signature checks;
- ``_chain``: classification into end entity, intermediates and roots (``CertificateChain``);
- ``_format``: what a payload holds (``PayloadFormat``);
- ``_load``: ``load_certificates`` and ``identify_payload``;
- ``_fast``: every shortcut (the CA cache, standard PEM, the inline DER walk, ...), behind one
  switch;
- ``_pkcs12``: private keys and PKCS#12 bundles.

Nothing here imports httpx or asyncio, reads a clock or sleeps; the import contract in
``pyproject.toml`` keeps it so.
"""

from ._chain import CertificateChain
from ._der import looks_like_asn1_sequence
from ._format import Container, PayloadEncoding, PayloadFormat
from ._load import identify_payload, load_certificates
from ._names import email_addresses, rfc4514
from ._x509 import serial_number

__all__ = [
    "CertificateChain",
    "Container",
    "PayloadEncoding",
    "PayloadFormat",
    "email_addresses",
    "identify_payload",
    "load_certificates",
    "looks_like_asn1_sequence",
    "rfc4514",
    "serial_number",
]
