"""Tests that the classification shortcuts give what the plain path gives.

``classify`` answers an end entity + at most one CA + at most one root without building the issuer
graph, when nothing is left to sort, and reads each certificate's names and key identifiers with an
inline DER walk.  Every set here, in every order, is classified with the shortcuts and with them
off (``_fast.disabled``), and the chains must be equal; the walk must read what the strict reader
reads from every certificate at hand.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
from collections.abc import Sequence

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from smime_collect._certs import _fast, _x509
from smime_collect._certs._chain import CertificateChain, classify
from smime_collect._certs._der import DERError, read_single
from smime_collect._certs._node import read_node
from smime_collect.testing._formats import der_tlv
from smime_collect.testing._pki import IssuedChain, TestCA

_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def issued() -> IssuedChain:
    """An end entity, one intermediate and a root."""
    return TestCA.create("Shortcut").issue_smime("carol@example.com", common_name="Carol")


def _issue(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool | None
) -> x509.Certificate:
    """A certificate for a fresh key, signed with ``key``; ``ca`` None: no basicConstraints."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + datetime.timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    return builder.sign(key, hashes.SHA256())


def _both_ways(
    certificates: Sequence[x509.Certificate],
) -> tuple[CertificateChain, CertificateChain]:
    pairs = [(c, c.public_bytes(Encoding.DER)) for c in certificates]
    _fast.ca_cache.clear()
    fast = classify(pairs)
    with _fast.disabled():
        plain = classify(pairs)
    return fast, plain


def _sets(issued: IssuedChain) -> dict[str, tuple[x509.Certificate, ...]]:
    key = ec.generate_private_key(ec.SECP256R1())
    odd_issuer = _issue("Odd CA", issued.end_entity.subject, key, ca=True)  # "issued" by the EE
    no_constraints = _issue("Dave", issued.intermediates[0].subject, key, ca=None)
    second = TestCA.create("Other").issue_smime("erin@example.com", common_name="Erin")
    end_entity, intermediate, root = issued.end_entity, issued.intermediates[0], issued.root
    return {
        "ee-ca-root": (end_entity, intermediate, root),
        "ee-ca": (end_entity, intermediate),
        "ee-root": (end_entity, root),
        "ee": (end_entity,),
        "ca-root bundle": (intermediate, root),
        "root": (root,),
        "two end entities": (end_entity, second.end_entity, root),
        "ca issued by the ee's name": (end_entity, odd_issuer, root),
        "ee without basicConstraints": (no_constraints, intermediate, root),
        "duplicates": (end_entity, intermediate, end_entity, root, intermediate),
        "two roots": (end_entity, root, second.root),
    }


class TestShortcutAgreesWithTheGraph:
    """Small sets give the same chain with and without the shortcut, in every order."""

    def test_every_set_and_order(self, issued: IssuedChain) -> None:
        """Each permutation of each set: shortcut chain == graph chain."""
        for name, certificates in _sets(issued).items():
            for order in itertools.permutations(certificates):
                fast, plain = _both_ways(order)
                assert fast == plain, (name, fast, plain)

    def test_ca_issued_by_the_end_entity_name_is_left_to_the_graph(
        self, issued: IssuedChain
    ) -> None:
        """A CA naming the non-CA as issuer makes the shortcut decline."""
        certificates = _sets(issued)["ca issued by the ee's name"]
        assert _shortcut(certificates) is None

    def test_the_common_chain_takes_the_shortcut(self, issued: IssuedChain) -> None:
        """End entity, intermediate and root need no graph: the shortcut answers."""
        chain = _shortcut(issued.certificates())
        assert chain is not None
        assert chain.end_entity == issued.end_entity
        assert chain.intermediates == issued.intermediates
        assert chain.roots == (issued.root,)


def _shortcut(certificates: Sequence[x509.Certificate]) -> CertificateChain | None:
    """What the shortcut answers for this set (roots told apart as classify does)."""
    nodes = [read_node(c, c.public_bytes(Encoding.DER)) for c in certificates]
    roots = [node for node in nodes if node.self_signed]
    answer = _fast.simple_chain([node for node in nodes if not node.self_signed], roots)
    if answer is None:
        return None
    end_entity, cas = answer
    return CertificateChain(
        end_entity.certificate, [n.certificate for n in cas], [n.certificate for n in roots]
    )


def _vector(path: str) -> bytes:
    with cryptography_vectors.open_vector_file(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def _vector_certificates() -> dict[str, x509.Certificate]:
    """Real certificates of many shapes from cryptography-vectors (PEM and DER files)."""
    found: dict[str, x509.Certificate] = {}
    for path in [
        "x509/cryptography.io.pem",
        "x509/ecdsa_root.pem",
        "x509/verisign_md2_root.pem",
        "x509/v1_cert.pem",
        "x509/custom/ca/ca.pem",
        "x509/PKITS_data/certs/TrustAnchorRootCertificate.crt",
        "x509/PKITS_data/certs/GoodCACert.crt",
        "x509/PKITS_data/certs/BasicSelfIssuedNewKeyOldWithNewCACert.crt",
        "x509/PKITS_data/certs/ValidCertificatePathTest1EE.crt",
    ]:
        data = _vector(path)
        loaded = (
            x509.load_pem_x509_certificates(data)
            if data.startswith(b"-----")
            else [x509.load_der_x509_certificate(data)]
        )
        for number, certificate in enumerate(loaded):
            found[f"{path}#{number}"] = certificate
    return found


def _test_pki_certificates(issued: IssuedChain) -> dict[str, x509.Certificate]:
    usertrust = TestCA.create("USERTrust", key_type="rsa")
    aaa = TestCA.create("AAA", key_type="rsa", root_hash="sha1")
    return {
        "ec end entity": issued.end_entity,
        "ec intermediate": issued.intermediates[0],
        "ec root": issued.root,
        "rsa end entity": usertrust.issue_smime("rsa@example.com").end_entity,
        "sha1 root, SKI no AKI": aaa.root,
        "cross-certificate": usertrust.cross_certificate(aaa),
        "v1 root": TestCA.create("Old", root_v1=True).root,
        "no basicConstraints": _issue("Dave", issued.intermediates[0].subject, _KEY, ca=None),
    }


_KEY = ec.generate_private_key(ec.SECP256R1())


def _elements() -> st.SearchStrategy[bytes]:
    """Well-formed DER elements, nested, with one- and two-octet lengths and odd tags."""
    tags = st.sampled_from([0x01, 0x02, 0x04, 0x05, 0x30, 0x31, 0x80, 0x81, 0xA0, 0x1F, 0x3F])
    content = st.one_of(
        st.binary(max_size=4), st.just(b"\x00"), st.binary(min_size=128, max_size=130)
    )
    leaf = st.builds(der_tlv, tags, content)
    return st.recursive(
        leaf,
        lambda children: st.builds(
            lambda tag, parts: der_tlv(tag, b"".join(parts)), tags, st.lists(children, max_size=3)
        ),
        max_leaves=6,
    )


def _damaged(element: bytes) -> st.SearchStrategy[bytes]:
    """The element with one octet changed, cut short, or followed by another octet."""
    return st.one_of(
        st.builds(
            lambda at, octet: element[:at] + bytes([octet]) + element[at + 1 :],
            st.integers(0, len(element) - 1),
            st.integers(0, 255),
        ),
        st.integers(0, len(element) - 1).map(lambda at: element[:at]),
        st.integers(0, 255).map(lambda octet: element + bytes([octet])),
    )


class TestInlineWalkAgreesWithTheStrictReader:
    """The inline DER walk reads what the strict reader reads, on every certificate at hand."""

    def test_every_certificate(self, issued: IssuedChain) -> None:
        """Names, cA flag, SKI and AKI are equal, read both ways."""
        certificates = {**_vector_certificates(), **_test_pki_certificates(issued)}
        for name, certificate in certificates.items():
            der = certificate.public_bytes(Encoding.DER)
            assert _fast.read_fields(der) == _x509.read_fields(der), name

    @pytest.mark.parametrize(
        "extensions",
        [
            pytest.param(
                [
                    x509.SubjectAlternativeName(
                        [x509.RFC822Name(f"u{n}@example.com") for n in range(9)]
                    )
                ],
                id="long-extension-first",
            ),
            pytest.param(
                [
                    x509.AuthorityKeyIdentifier(
                        None,
                        [
                            x509.DirectoryName(
                                x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "I" * 90)])
                            )
                        ],
                        12345,
                    )
                ],
                id="aki-without-key-identifier",
            ),
            pytest.param(
                [
                    x509.AuthorityKeyIdentifier(
                        b"\x07" * 20,
                        [
                            x509.DirectoryName(
                                x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "I" * 90)])
                            )
                        ],
                        12345,
                    ),
                    x509.BasicConstraints(ca=True, path_length=3),
                ],
                id="long-aki-and-path-length",
            ),
            pytest.param(
                [x509.SubjectKeyIdentifier(b"\x05" * 200)], id="long-subject-key-identifier"
            ),
        ],
    )
    def test_odd_extensions(self, extensions: list[x509.ExtensionType]) -> None:
        """Long lengths, an AKI without keyIdentifier, a pathLen: read alike both ways."""
        builder = x509.CertificateBuilder(
            issuer_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Issuer")]),
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Odd")]),
            public_key=_KEY.public_key(),
            serial_number=3,
            not_valid_before=_NOW,
            not_valid_after=_NOW + datetime.timedelta(days=1),
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        der = builder.sign(_KEY, hashes.SHA256()).public_bytes(Encoding.DER)
        assert _fast.read_fields(der) == _x509.read_fields(der)

    def test_unique_identifiers_are_skipped(self, issued: IssuedChain) -> None:
        """A subjectUniqueID [2] before the extensions is skipped alike both ways."""
        fields = read_single(issued.end_entity.tbs_certificate_bytes).children()
        unique = der_tlv(0x82, b"\x00\x01\x02")
        tbs = der_tlv(0x30, b"".join(f.encoded for f in fields[:-1]) + unique + fields[-1].encoded)
        _, algorithm, signature = read_single(
            issued.end_entity.public_bytes(Encoding.DER)
        ).children()
        der = der_tlv(0x30, tbs + algorithm.encoded + signature.encoded)
        x509.load_der_x509_certificate(der)
        assert _fast.read_fields(der) == _x509.read_fields(der)
        assert _x509.read_fields(der).ski is not None

    def test_the_walk_declines_what_it_cannot_read(self) -> None:
        """Bytes the walk does not fit give None, so the strict reader reads them instead."""
        assert _fast.read_fields(b"\x30\x03\x30\x01") is None

    def test_repeated_extension_counts_once(self, issued: IssuedChain) -> None:
        """A repeated SKI (RFC 5280 forbids it): both readers keep the first one."""
        original = issued.end_entity.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        der = _with_extra_extensions(issued.end_entity, after=b"\x55\x1d\x0e", extra=_SECOND_SKI)
        assert _fast.read_fields(der) == _x509.read_fields(der)
        assert _x509.read_fields(der).ski == original.value.digest

    @pytest.mark.parametrize(
        "value",
        [b"\x30\x05\x01", b"\x30\x03\x01\x01\xff\x00", b"\x01\x01\xff"],
        ids=["truncated", "trailing-byte", "not-a-sequence"],
    )
    def test_malformed_basic_constraints(self, issued: IssuedChain, value: bytes) -> None:
        """A basicConstraints value that does not parse: the walk declines, the node links nowhere.

        cryptography loads such a certificate (it reads extension values only when asked).
        """
        extension = _extension(b"\x55\x1d\x13", value)
        der = _with_extra_extensions(issued.end_entity, replace=b"\x55\x1d\x13", extra=extension)
        certificate = x509.load_der_x509_certificate(der)
        assert _fast.read_fields(der) is None
        with pytest.raises(DERError):
            _x509.read_fields(der)
        for shortcuts in (True, False):
            with contextlib.nullcontext() if shortcuts else _fast.disabled():
                _fast.ca_cache.clear()
                node = read_node(certificate, der)
            assert node[2:] == (*_x509.unreadable_fields(der), False)

    @settings(max_examples=400, deadline=None)
    @given(
        oid=st.sampled_from([b"\x55\x1d\x13", b"\x55\x1d\x0e", b"\x55\x1d\x23"]),
        critical=st.booleans(),
        value=st.one_of(_elements(), _elements().flatmap(_damaged), st.binary(max_size=12)),
    )
    def test_any_extension_value(
        self, issued: IssuedChain, oid: bytes, critical: bool, value: bytes
    ) -> None:
        """Any basicConstraints, SKI or AKI value: read as the strict reader does, or declined."""
        flag = b"\x01\x01\xff" if critical else b""
        extension = der_tlv(0x30, der_tlv(0x06, oid) + flag + der_tlv(0x04, value))
        der = _with_extra_extensions(issued.end_entity, replace=oid, extra=extension)
        try:
            expected: object = _x509.read_fields(der)
        except DERError:
            expected = None
        assert _fast.read_fields(der) in (None, expected)


def _extension(oid: bytes, value: bytes) -> bytes:
    """An Extension: SEQUENCE { OID 2.5.29.x, extnValue OCTET STRING }."""
    return der_tlv(0x30, der_tlv(0x06, oid) + der_tlv(0x04, value))


_SECOND_SKI = _extension(b"\x55\x1d\x0e", der_tlv(0x04, b"\x02" * 20))


def _with_extra_extensions(
    certificate: x509.Certificate, *, extra: bytes, after: bytes = b"", replace: bytes = b""
) -> bytes:
    """The certificate's DER with ``extra`` after one extension, or instead of one.

    ``after`` and ``replace`` name an extension by its OID's content octets.  The signature no
    longer matches, which the readers do not look at.
    """
    fields = read_single(certificate.tbs_certificate_bytes).children()
    pieces: list[bytes] = []
    for extension in fields[-1].children()[0].children():
        oid = extension.children()[0].content
        if oid != replace:
            pieces.append(extension.encoded)
        if oid in (after, replace):
            pieces.append(extra)
    extensions = der_tlv(0xA3, der_tlv(0x30, b"".join(pieces)))
    tbs = der_tlv(0x30, b"".join(field.encoded for field in fields[:-1]) + extensions)
    _, algorithm, signature = read_single(certificate.public_bytes(Encoding.DER)).children()
    return der_tlv(0x30, tbs + algorithm.encoded + signature.encoded)


class TestNodes:
    """A certificate's node: what classification reads, and whether it is self-signed."""

    @pytest.mark.parametrize(
        ("name", "self_signed"),
        [
            ("ec root", True),
            ("sha1 root, SKI no AKI", True),
            ("v1 root", True),
            ("cross-certificate", False),
            ("ec intermediate", False),
        ],
    )
    def test_self_signed(self, issued: IssuedChain, name: str, self_signed: bool) -> None:
        """Self-issued and signed by its own key, with the shortcuts on and off alike."""
        certificate = _test_pki_certificates(issued)[name]
        der = certificate.public_bytes(Encoding.DER)
        _fast.ca_cache.clear()
        node = read_node(certificate, der)
        with _fast.disabled():
            plain = read_node(certificate, der)
        assert node.self_signed is plain.self_signed is self_signed
        assert node[:-1] == plain[:-1]

    def test_a_node_that_cannot_be_read_links_to_nothing(self, issued: IssuedChain) -> None:
        """A certificate with an unreadable key identifier is kept, linked to nothing."""
        extension = _extension(b"\x55\x1d\x23", b"\x30\x05")
        der = _with_extra_extensions(issued.end_entity, replace=b"\x55\x1d\x23", extra=extension)
        odd = x509.load_der_x509_certificate(der)
        for certificates in ([odd, *issued.certificates()[1:]], [*issued.certificates()[1:], odd]):
            chain = CertificateChain.from_certificates(certificates)
            assert chain.end_entity == odd
            assert chain.intermediates == issued.intermediates
