r"""Certificates rendered in every container CollectSMIME can send, for your own tests.

The simulator builds its response bodies with these functions; use them to feed a parser the
same bytes (``docs/explanation/formats.md`` describes each container).  Pure functions over
cryptography certificates, no I/O::

    from smime_collect.testing import TestCA
    from smime_collect.testing.formats import to_base64, to_pkcs7_der

    issued = TestCA.create().issue_smime("alice@example.com")
    body = b"2\n" + to_base64(to_pkcs7_der(issued.certificates()))  # responseType 2, base64
"""

from __future__ import annotations

from ._formats import (
    der_tlv,
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
    to_zip,
)

__all__ = [
    "der_tlv",
    "to_base64",
    "to_cmmf_der",
    "to_netscape_sequence_der",
    "to_pem",
    "to_pem_blocks",
    "to_pkcs7_der",
    "to_zip",
]

# As in smime_collect itself: public functions say where users import them from.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
