"""Resource bounds: each documented cap holds at its edge, with its real value, in bounded memory.

=====================  =================================  =========================================
bound                  value                              where
=====================  =================================  =========================================
response body          4 MiB (``max_response_bytes``)     Content-Length first, then counted
certificate data       64 MiB                             ``load_certificates`` input
PEM blocks             1024                               per input
certificates           4096                               per input, across containers
ZIP entries            256 (``max_zip_entries``)          central directory, before unpacking
ZIP unpacked size      16 MiB (``max_zip_size``)          declared sizes, then while inflating
ASN.1 nesting          32 levels                          the DER reader (``_der``)
Sectigo error message  1024 characters                    line 2 of a negative status
=====================  =================================  =========================================

``tests/test_certs.py`` checks most caps just past the edge (some with a lowered cap); this module
checks both sides of each edge at the real value, that a refused ZIP is never opened, and the
memory a refusal costs (``tracemalloc`` peak).
"""

from __future__ import annotations

import contextlib
import io
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from smime_collect import (
    CertificateFormatError,
    CollectClient,
    CollectError,
    CollectRequest,
    ResponseFormatError,
    UnknownServerError,
    _protocol,
    load_certificates,
    parse_response,
)
from smime_collect._certs import _der
from smime_collect._certs import _load as _certs
from smime_collect._client import _client
from smime_collect.testing import Chaos, Fault, RunningServer, Simulator, serve
from smime_collect.testing._formats import der_tlv, to_pem, to_pem_blocks, to_zip
from smime_collect.testing._pki import TestCA

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def certificates() -> tuple[Any, ...]:
    """A real chain: end entity, intermediate, root."""
    return TestCA.create("Bounds").issue_smime("bounds@example.com").certificates()


def peak_memory(work: Callable[[], object]) -> int:
    """Peak traced memory while ``work`` runs; the CollectError it raises is ignored."""
    tracemalloc.start()
    try:
        with contextlib.suppress(CollectError):
            work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_documented_values() -> None:
    """The values in the table above (and the README) are the values in the code."""
    assert 4 * MiB == _client.DEFAULT_MAX_RESPONSE_BYTES
    assert 64 * MiB == _certs.MAX_INPUT_BYTES
    assert _certs.MAX_PEM_BLOCKS == 1024
    assert _certs.MAX_CERTIFICATES == 4096
    assert _certs.DEFAULT_MAX_ZIP_ENTRIES == 256
    assert 16 * MiB == _certs.DEFAULT_MAX_ZIP_SIZE
    assert _der.DEFAULT_MAX_DEPTH == 32
    assert _protocol._MAX_MESSAGE == 1024


def oversized_simulator(oversized_body_bytes: int) -> Simulator:
    """A simulator with order 1 whose OVERSIZED_BODY fault sends that many bytes of filler."""
    sim = Simulator(seed=1, chaos=Chaos(oversized_body_bytes=oversized_body_bytes))
    sim.add_account("bounds", "bounds-password")
    sim.add_order(1)
    return sim


def capped_client(server: RunningServer, cap: int) -> CollectClient:
    """A client of the served simulator's account that reads at most ``cap`` bytes of a body."""
    return CollectClient(
        "bounds",
        "bounds-password",
        base_url=server.url,
        verify=server.ssl_context(),
        max_response_bytes=cap,
    )


class TestResponseSize:
    """The client's response cap, over loopback TLS: exact edge, and the memory a refusal costs."""

    @pytest.mark.network
    async def test_edge_of_the_cap(self) -> None:
        """A body of exactly max_response_bytes is read; one byte more is refused unread."""
        cap = 64 * 1024
        sim = oversized_simulator(cap - 2)  # + "2\n" = cap
        async with serve(sim) as server, capped_client(server, cap) as client:
            sim.inject(Fault.OVERSIZED_BODY)
            # Read to the end: then it is the filler that is refused, as certificate data.
            with pytest.raises(CertificateFormatError):
                await client.collect(1)
            sim.chaos.oversized_body_bytes = cap - 1
            sim.inject(Fault.OVERSIZED_BODY)
            with pytest.raises(ResponseFormatError, match="longer than the max_response"):
                await client.collect(1)
        assert sim.stats.requests_total == 2

    @pytest.mark.network
    async def test_refusing_64_mib_costs_little_memory(self) -> None:
        """64 MiB without Content-Length over a 1 MiB cap: peak traced memory under 8 MiB."""
        sim = oversized_simulator(64 * MiB)
        sim.inject(Fault.OVERSIZED_BODY)
        async with serve(sim) as server, capped_client(server, 1 * MiB) as client:
            tracemalloc.start()
            try:
                with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                    await client.collect(1)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        # Client and server share the process: both sides' buffers are in this figure.
        assert peak < 8 * MiB, peak


class TestCertificateDataCaps:
    """Input size, PEM blocks and certificates: accepted at the cap, refused past it."""

    def test_input_size(self) -> None:
        """64 MiB + 1 byte is refused before parsing, in no more memory than the input."""
        data = b" " * (64 * MiB + 1)
        with pytest.raises(CertificateFormatError, match="more than the 67108864 accepted"):
            load_certificates(data)
        assert peak_memory(lambda: load_certificates(data)) < 1 * MiB

    def test_pem_blocks(self, certificates: tuple[Any, ...]) -> None:
        """1024 PEM blocks load; 1025 are refused, naming the cap."""
        block = to_pem_blocks(certificates[:1])
        assert len(load_certificates(block * 1024)) == 1  # duplicates collapse
        with pytest.raises(CertificateFormatError, match="more than 1024 PEM blocks"):
            load_certificates(block * 1025)

    def test_certificates(self, certificates: tuple[Any, ...]) -> None:
        """A PKCS#7 of 4096 certificates loads; 4097 is refused, naming the cap."""
        end_entity = certificates[0]
        at_cap = pkcs7.serialize_certificates([end_entity] * 4096, Encoding.DER)
        assert load_certificates(at_cap).end_entity == end_entity
        past = pkcs7.serialize_certificates([end_entity] * 4097, Encoding.DER)
        with pytest.raises(CertificateFormatError, match="more than 4096 certificates"):
            load_certificates(past)


@contextlib.contextmanager
def members_never_opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if any ZIP member is opened (the archive must be refused from its directory)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a ZIP member was opened")

    with monkeypatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "open", refuse)
        yield


class TestZipCaps:
    """ZIP entries and unpacked size: the edge of each cap, nothing unpacked past it."""

    def test_entries(self, certificates: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
        """256 entries load; 257 are refused without opening a member."""
        pem = to_pem_blocks(certificates)
        members = {f"note{i}.txt": b"x" for i in range(255)} | {"chain.pem": pem}
        assert len(load_certificates(to_zip(members))) == 3
        past = to_zip(members | {"one-more.txt": b"x"})
        with (
            members_never_opened(monkeypatch),
            pytest.raises(CertificateFormatError, match=r"257 entries.*not unpacked"),
        ):
            load_certificates(past)

    def test_armoured_zip_loads_but_never_nests(self, certificates: tuple[Any, ...]) -> None:
        """A PEM-armoured ZIP loads; inside a ZIP member that armour is skipped, not unpacked."""
        archive = to_zip({"chain.pem": to_pem_blocks(certificates)})
        armoured = to_pem(archive, "ZIP")
        assert len(load_certificates(armoured)) == 3
        with pytest.raises(CertificateFormatError, match="none holding a certificate"):
            load_certificates(to_zip({"inner.pem": armoured}))

    def test_unpacked_size(
        self, certificates: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Members adding up to exactly 16 MiB load; one byte more is refused unopened."""
        pem = to_pem_blocks(certificates)
        filler = 16 * MiB - len(pem)
        at_cap = to_zip({"chain.pem": pem, "padding.txt": b"\n" * filler})
        assert len(load_certificates(at_cap)) == 3
        past = to_zip({"chain.pem": pem, "padding.txt": b"\n" * (filler + 1)})
        with (
            members_never_opened(monkeypatch),
            pytest.raises(CertificateFormatError, match=r"16777217 bytes.*not unpacked"),
        ):
            load_certificates(past)

    def test_bomb_with_lying_sizes_stays_small(self) -> None:
        """100 MiB of zeros whose headers claim 10 bytes: refused; memory follows max_zip_size."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("bomb.pem", bytes(100 * MiB))
        data = bytearray(buffer.getvalue())
        assert len(data) < 200_000
        # Uncompressed size: local header offset 22, central directory entry offset 24.
        data[22:26] = (10).to_bytes(4, "little")
        central = data.rfind(b"PK\x01\x02")
        data[central + 24 : central + 28] = (10).to_bytes(4, "little")
        bomb = bytes(data)
        with pytest.raises(CertificateFormatError, match="ZIP"):
            load_certificates(bomb)
        # A member is inflated at most up to the size budget left, so the peak is about twice
        # max_zip_size (inflated chunk + its copy), never the 100 MiB the bomb holds.
        assert peak_memory(lambda: load_certificates(bomb)) < 2 * 16 * MiB + 4 * MiB
        assert peak_memory(lambda: load_certificates(bomb, max_zip_size=MiB)) < 2 * MiB + 4 * MiB


class TestNestingAndMessages:
    """ASN.1 nesting and Sectigo's error message line."""

    def test_der_reader_depth(self) -> None:
        """The DER reader descends 32 levels and refuses the 33rd."""
        data = b"\x05\x00"
        for _ in range(40):
            data = der_tlv(0x30, data)
        element = _der.read_single(data)
        for _ in range(32):
            (element,) = element.children()
        with pytest.raises(_der.DERError, match="deeper than 32 levels"):
            element.children()

    @pytest.mark.parametrize("wrapper", ["netscape", "cmmf", "pkcs7-ber"])
    def test_deep_nesting_in_each_container(self, wrapper: str) -> None:
        """100,000 nested SEQUENCEs inside each container: refused, under 8 MiB of peak memory."""
        depth = 100_000
        if wrapper == "pkcs7-ber":
            nested = b"\x30\x80" * depth + b"\x00\x00" * depth
        else:
            nested = _nest_definite(depth)
        if wrapper == "netscape":
            data = der_tlv(0x30, bytes.fromhex("06096086480186f8420205") + der_tlv(0xA0, nested))
        elif wrapper == "cmmf":
            data = der_tlv(0x30, der_tlv(0xA1, nested) + der_tlv(0x30, nested))
        else:
            data = nested
        with pytest.raises(CertificateFormatError):
            load_certificates(data)
        assert peak_memory(lambda: load_certificates(data)) < 8 * MiB

    def test_error_message_is_capped(self) -> None:
        """A 4 MiB line 2 after -14 gives a SectigoError whose message is 1024 characters."""
        with pytest.raises(UnknownServerError) as caught:
            parse_response(b"-14\n" + b"x" * (4 * MiB), CollectRequest(1))
        assert len(caught.value.message) == 1024
        assert len(str(caught.value)) < 2048


def _nest_definite(depth: int) -> bytes:
    """``depth`` SEQUENCEs around NULL, definite lengths, built in linear time."""
    lengths = []
    size = 2  # NULL
    for _ in range(depth):
        lengths.append(size)
        size += 1 + len(_length(size))
    return b"".join(b"\x30" + _length(n) for n in reversed(lengths)) + b"\x05\x00"


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets
