"""The simulator's certificate bodies: every rendering and quirk, each read back by the library."""

from __future__ import annotations

import base64
import itertools

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from simulator_fakes import (
    LOGIN,
    NETSCAPE_OID,
    PASSWORD,
    form,
    http_fixture,  # noqa: F401 -- the "http" fixture
    lines,
    post,
    sim_fixture,  # noqa: F401 -- the "sim" fixture
)

from smime_collect import (
    CollectRequest,
    QueryType,
    ResponseEncoding,
    ResponseType,
    Status,
    parse_response,
)
from smime_collect._protocol import looks_like_asn1_sequence
from smime_collect._rules import combination_error
from smime_collect.testing import (
    Quirks,
    Simulator,
    TestCA,
)
from smime_collect.testing.formats import der_tlv


class TestRendering:
    """Every query type, response type and encoding, and the quirks."""

    async def test_default_is_individual_pem_root_first(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """No responseType: concatenated PEM, root first like the page's sample, then parsed."""
        response = await post(http, sim, **form())
        assert response.headers["content-type"] == "text/plain"
        certificates = x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])
        chain = sim.order(1001).chain
        assert chain is not None
        assert certificates == [chain.root, *chain.intermediates, chain.end_entity]
        result = parse_response(response.content, CollectRequest(1001))
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert len(result.chain) == 3

    async def test_end_entity_is_an_smime_certificate(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The leaf carries emailProtection and the order's e-mail as an rfc822Name."""
        response = await post(http, sim, **form(query=2))
        leaf = x509.load_pem_x509_certificate(response.content.partition(b"\n")[2])
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku

    async def test_leaf_first_quirk(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """root_first=False lists the end entity first."""
        sim.quirks = Quirks(root_first=False)
        response = await post(http, sim, **form())
        first = x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])[0]
        assert first == sim.order(1001).chain.end_entity  # type: ignore[union-attr]

    async def test_certificate_only_and_ca_bundle(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """QueryType 2 sends the end entity alone; 3 the CA certificates alone."""
        leaf_only = await post(http, sim, **form(query=2))
        cas_only = await post(http, sim, **form(query=3))
        chain = sim.order(1001).chain
        assert chain is not None
        body = leaf_only.content.partition(b"\n")[2]
        assert x509.load_pem_x509_certificates(body) == [chain.end_entity]
        body = cas_only.content.partition(b"\n")[2]
        assert x509.load_pem_x509_certificates(body) == [chain.root, *chain.intermediates]

    async def test_include_root_off(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """include_root=False leaves the self-signed root out."""
        sim.quirks = Quirks(include_root=False)
        response = await post(http, sim, **form())
        assert len(x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])) == 2

    async def test_validity_period_line(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """showValidityPeriod=Y puts the leaf's dates, day first, on line 2."""
        response = await post(http, sim, **form(showValidityPeriod="Y"))
        leaf = sim.order(1001).chain.end_entity  # type: ignore[union-attr]
        start = leaf.not_valid_before_utc.strftime("%d/%m/%Y")
        end = leaf.not_valid_after_utc.strftime("%d/%m/%Y")
        assert lines(response)[1] == f"{start} {end}"
        result = parse_response(response.content, CollectRequest(1001, show_validity_period=True))
        assert result.validity is not None
        assert result.validity.not_before == leaf.not_valid_before_utc
        assert result.validity.not_after == leaf.not_valid_after_utc

    async def test_status_query_with_validity(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A status query of a ready order: "1" and, when asked, the validity line."""
        response = await post(http, sim, **form(query=0, showValidityPeriod="Y"))
        result = parse_response(
            response.content, CollectRequest(1001, QueryType.STATUS, show_validity_period=True)
        )
        assert result.status is Status.AVAILABLE
        assert result.validity is not None
        assert len(lines(response)) == 2

    async def test_pkcs7_base64_is_bare(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """ResponseType 2 in base64: no PEM armour, a SignedData with all three certificates."""
        response = await post(http, sim, **form(responseType="2"))
        head, _, data = response.content.partition(b"\n")
        assert head == b"2"
        assert b"-----" not in data
        assert len(pkcs7.load_der_pkcs7_certificates(base64.b64decode(data))) == 3

    async def test_pkcs7_binary_is_the_bare_structure(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """ResponseEncoding 1: DER only, no status line, labelled application/pkcs7-mime."""
        response = await post(http, sim, **form(responseType="2", responseEncoding="1"))
        assert response.headers["content-type"] == "application/pkcs7-mime"
        assert looks_like_asn1_sequence(response.content)
        assert response.content.startswith(b"0")  # the trap: 0x30 reads as status "0"
        assert len(pkcs7.load_der_pkcs7_certificates(response.content)) == 3

    async def test_binary_while_processing_is_text(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Binary only when ready: a processing order still answers the text "0"."""
        sim.add_order(7007, ready_after_polls=1)
        response = await post(http, sim, **form(order=7007, responseEncoding="1"))
        assert response.content == b"0\n"
        request = CollectRequest(7007, response_encoding=ResponseEncoding.BINARY)
        assert parse_response(response.content, request).status is Status.PROCESSING

    async def test_netscape_sequence(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """ResponseType 1: bare base64 of SEQUENCE { nsCertSequence OID, [0] certificates }."""
        response = await post(http, sim, **form(responseType="1"))
        der = base64.b64decode(response.content.partition(b"\n")[2])
        assert looks_like_asn1_sequence(der)
        assert NETSCAPE_OID in der[:16]
        chain = sim.order(1001).chain
        assert chain is not None
        for certificate in chain.certificates():
            assert certificate.public_bytes(Encoding.DER) in der

    @pytest.mark.parametrize("tagging", ["explicit", "implicit"])
    async def test_cmmf(self, sim: Simulator, http: httpx.AsyncClient, tagging: str) -> None:
        """ResponseType 4: CertRepContent with caPubs; the leaf tagged [0] as the quirk says."""
        sim.quirks = Quirks(cmmf_tagging=tagging)  # type: ignore[arg-type]
        response = await post(http, sim, **form(responseType="4"))
        der = base64.b64decode(response.content.partition(b"\n")[2])
        assert looks_like_asn1_sequence(der)
        chain = sim.order(1001).chain
        assert chain is not None
        leaf = chain.end_entity.public_bytes(Encoding.DER)
        # EXPLICIT wraps the certificate in [0]; IMPLICIT replaces its SEQUENCE tag with [0].
        tagged = der_tlv(0xA0, leaf) if tagging == "explicit" else b"\xa0" + leaf[1:]
        assert tagged in der
        for ca in (*chain.intermediates, chain.root):
            assert ca.public_bytes(Encoding.DER) in der

    async def test_sloppy_markers_and_crlf(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """The page's malformed markers and CRLF line endings, on every line."""
        sim.quirks = Quirks(sloppy_pem_markers=True, crlf=True)
        response = await post(http, sim, **form(showValidityPeriod="Y"))
        assert b"----- BEGIN CERTIFICATE -----\r\n" in response.content
        assert response.content.endswith(b"---- END CERTIFICATE -----\r\n")
        assert response.content.count(b"\n") == response.content.count(b"\r\n")
        result = parse_response(response.content, CollectRequest(1001, show_validity_period=True))
        assert result.validity is not None

    async def test_crlf_error_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Errors follow the CRLF quirk too."""
        sim.quirks = Quirks(crlf=True)
        response = await post(http, sim, **form(order=999))
        assert response.content == b"-4\r\nThe value of the 'orderNumber' argument is invalid!\r\n"

    async def test_default_response_type_quirk(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """default_response_type=PKCS7 for queryType 1; queryType 2 falls back to PEM."""
        sim.quirks = Quirks(default_response_type=ResponseType.PKCS7, base64_line_length=None)
        chain_answer = await post(http, sim, **form())
        assert len(lines(chain_answer)) == 2  # one long base64 line
        assert len(pkcs7.load_der_pkcs7_certificates(base64.b64decode(lines(chain_answer)[1]))) == 3
        leaf_answer = await post(http, sim, **form(query=2))
        assert b"-----BEGIN CERTIFICATE-----" in leaf_answer.content

    @pytest.mark.parametrize("root_first", [True, False])
    async def test_unsorted_pkcs7_quirk(
        self, sim: Simulator, http: httpx.AsyncClient, root_first: bool
    ) -> None:
        """pkcs7_sorted=False writes the SET in list order (like OpenSSL), not DER order."""
        sim.quirks = Quirks(pkcs7_sorted=False, root_first=root_first)
        response = await post(http, sim, **form(responseEncoding="1"))
        chain = sim.order(1001).chain
        assert chain is not None
        listed = [chain.root, *chain.intermediates, chain.end_entity]
        if not root_first:
            listed.reverse()
        positions = [response.content.index(c.public_bytes(Encoding.DER)) for c in listed]
        assert positions == sorted(positions)

    async def test_pkcs7_is_der_sorted_by_default(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """By default the SET OF certificates is in DER order (X.690 11.6), whatever the quirks."""
        response = await post(http, sim, **form(responseEncoding="1"))
        chain = sim.order(1001).chain
        assert chain is not None
        ders = [c.public_bytes(Encoding.DER) for c in chain.certificates()]
        width = max(map(len, ders))
        in_body = sorted(ders, key=response.content.index)
        assert in_body == sorted(ders, key=lambda d: d.ljust(width, b"\x00"))

    async def test_certificates_are_issued_once_and_bodies_cached(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The leaf is made on first collection and reused; the same query gives the same bytes."""
        order = sim.order(1001)
        assert order.chain is None
        first = await post(http, sim, **form())
        chain = order.chain
        second = await post(http, sim, **form())
        assert order.chain is chain
        assert first.content == second.content

    def test_the_default_ca_is_shared_by_the_process(self, sim: Simulator) -> None:
        """TestCA.create is cached: every simulator not given ``ca=`` issues under the same CA."""
        assert TestCA.create() is TestCA.create()
        assert Simulator().ca is sim.ca is TestCA.create()
        assert TestCA.create("Other") is not sim.ca

    async def test_orders_get_distinct_leaves(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Each order has its own end entity, issued by the simulator's one CA."""
        sim.add_order(1002)
        await post(http, sim, **form(order=1001, query=2))
        await post(http, sim, **form(order=1002, query=2))
        one, two = sim.order(1001).chain, sim.order(1002).chain
        assert one is not None
        assert two is not None
        assert one.end_entity != two.end_entity
        assert one.root == two.root == sim.ca.root

    def test_issue_certificates_up_front(self, sim: Simulator) -> None:
        """issue_certificates() makes every order's chain before any request."""
        sim.add_orders([1002, 1003])
        sim.issue_certificates()
        chains = [sim.order(n).chain for n in (1001, 1002, 1003)]
        assert all(chain is not None for chain in chains)
        assert sim.stats.requests_total == 0
        sim.issue_certificates()  # a second call keeps what was issued
        assert [sim.order(n).chain for n in (1001, 1002, 1003)] == chains

    async def test_given_chain_is_served(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """add_order(chain=...) serves the caller's certificates."""
        issued = sim.ca.issue_smime("bob@example.com", days=30)
        sim.add_order(8008, chain=issued)
        response = await post(http, sim, **form(order=8008, query=2))
        leaf = x509.load_pem_x509_certificate(response.content.partition(b"\n")[2])
        assert leaf == issued.end_entity


ACCEPTED = [
    (query, response_type, encoding)
    for query, response_type, encoding in itertools.product(
        QueryType, [None, *ResponseType], [None, *ResponseEncoding]
    )
    if combination_error(query, response_type, encoding) is None
]


class TestClassifiedByTheLibrary:
    """Every body the simulator renders loads into the same classified chain."""

    @pytest.mark.parametrize(
        "quirks",
        [
            Quirks(),
            Quirks(
                root_first=False,
                sloppy_pem_markers=True,
                crlf=True,
                pkcs7_sorted=False,
                cmmf_tagging="implicit",
                base64_line_length=None,
            ),
        ],
        ids=["plain", "quirky"],
    )
    async def test_every_accepted_request_is_answered_and_parsed(
        self, sim: Simulator, http: httpx.AsyncClient, quirks: Quirks
    ) -> None:
        """Every accepted combination, validity asked for, is rendered and read back whole."""
        sim.quirks = quirks
        assert len(ACCEPTED) == 24  # 4 for each of query types 0, 2, 3; 12 for query type 1
        for query, response_type, encoding in ACCEPTED:
            request = CollectRequest(
                1001, query, response_type, encoding, show_validity_period=True
            )
            response = await http.post(sim.url, data=request.form_fields(LOGIN, PASSWORD))
            result = parse_response(response.content, request)
            shape = (query, response_type, encoding)
            if query is QueryType.STATUS:
                assert (result.status, result.chain) == (Status.AVAILABLE, None), shape
            else:
                assert result.status is Status.ATTACHED, shape
                assert result.chain is not None
                assert result.payload, shape
                assert (result.chain.end_entity is None) is (query is QueryType.CA_BUNDLE), shape
                assert (len(result.chain) == 1) is (query is QueryType.CERTIFICATE), shape
            if not request.wants_binary:
                assert result.validity is not None
                assert result.validity.not_before.hour == 0, shape

    @pytest.mark.parametrize(
        "quirks",
        [
            Quirks(),
            Quirks(root_first=False, sloppy_pem_markers=True, crlf=True),
            Quirks(pkcs7_sorted=False, cmmf_tagging="implicit", base64_line_length=None),
        ],
        ids=["default", "leaf-first-sloppy-crlf", "unsorted-implicit-oneline"],
    )
    @pytest.mark.parametrize(
        ("response_type", "encoding"),
        [
            (None, None),
            (ResponseType.INDIVIDUAL, None),
            (ResponseType.PKCS7, None),
            (ResponseType.PKCS7, ResponseEncoding.BINARY),
            (None, ResponseEncoding.BINARY),
            (ResponseType.NETSCAPE_SEQUENCE, ResponseEncoding.BASE64),
            (ResponseType.CMMF, None),
        ],
        ids=["default", "individual", "pkcs7", "pkcs7-binary", "binary", "netscape", "cmmf"],
    )
    async def test_parse_response_classifies_every_rendering(
        self,
        sim: Simulator,
        http: httpx.AsyncClient,
        quirks: Quirks,
        response_type: ResponseType | None,
        encoding: ResponseEncoding | None,
    ) -> None:
        """parse_response gets the leaf, the intermediate and the root right, whatever the form."""
        sim.quirks = quirks
        request = CollectRequest(
            1001,
            response_type=response_type,
            response_encoding=encoding,
            show_validity_period=True,
        )
        response = await http.post(sim.url, data=request.form_fields(LOGIN, PASSWORD))
        result = parse_response(response.content, request)
        issued = sim.order(1001).chain
        assert issued is not None
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert result.chain.end_entity == issued.end_entity
        assert result.chain.intermediates == issued.intermediates
        assert result.chain.roots == (issued.root,)
        assert (result.validity is None) is request.wants_binary
