"""Hostile responses: parse_response and load_certificates on damaged real bodies, in bounded work.

``tests/test_certs_fuzz.py`` already throws random bytes, bit flips, cuts, insertions, absurd
lengths and deep nesting at ``load_certificates`` alone.  This module adds what it does not do:

* whole CollectSMIME responses (status line, validity line, payload) rendered by the simulator for
  every query type, response type, encoding and rendering quirk, then damaged - bit flips,
  truncation, spliced and duplicated PEM blocks, replaced status and validity lines, payloads
  wrapped in nested ASN.1, huge declared lengths - and fed to ``parse_response`` with the request
  that produced them;
* ZIP members in every compression method zipfile reads, damaged;
* a few large adversarial inputs (4 MiB, the client's default response cap), each checked for
  peak traced memory (``tracemalloc``) and guarded by a watchdog against super-linear work;
* one hostile answer inside a ``collect_many`` batch: that order's error, the others collected.

What ``parse_response`` promises: nothing escapes but ``ResponseFormatError``
(``CertificateFormatError`` is one) and, when the first line is a negative status,
``SectigoError``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import re
import signal
import struct
import tracemalloc
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from types import FrameType

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smime_collect import (
    CertificateFormatError,
    CollectClient,
    CollectRequest,
    CollectResult,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    SectigoError,
    Status,
    load_certificates,
    parse_response,
)
from smime_collect.testing import Quirks, Simulator
from smime_collect.testing._formats import der_tlv, to_pem_blocks
from smime_collect.testing._pki import TestCA

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MiB = 1024 * 1024
LOGIN, PASSWORD = "fuzz", "fuzz-password"
_NEGATIVE_STATUS = re.compile(rb"[ \t]*-[0-9]{1,9}[ \t\r]*")


# -- real responses to damage -----------------------------------------------------------------


def _requests() -> list[CollectRequest]:
    """Every valid request shape, minus repeats that render the same body."""
    shapes = []
    for query_type in (QueryType.CERTIFICATE_AND_CHAIN, QueryType.CERTIFICATE, QueryType.CA_BUNDLE):
        for response_type in (None, *ResponseType):
            for encoding in (None, ResponseEncoding.BINARY):
                for validity in (False, True):
                    try:
                        shapes.append(
                            CollectRequest(1, query_type, response_type, encoding, validity)
                        )
                    except ValueError:
                        continue  # a combination the endpoint refuses (docs/reference/endpoint.md)
    return shapes


_QUIRKS = (
    Quirks(),
    Quirks(crlf=True, sloppy_pem_markers=True, root_first=False),
    Quirks(cmmf_tagging="implicit", pkcs7_sorted=False, base64_line_length=None),
)


@functools.cache
def real_responses() -> tuple[tuple[bytes, CollectRequest], ...]:
    """(body, request) for every request shape and quirk set, as the simulator renders them."""
    responses = []
    for quirks in _QUIRKS:
        sim = Simulator(seed=3, quirks=quirks, ca=TestCA.create("Fuzz responses"))
        sim.add_account(LOGIN, PASSWORD)
        sim.add_order(1)
        for request in _requests():
            fields = request.form_fields(LOGIN, PASSWORD).items()
            reply = sim.respond("POST", "https", fields)
            assert reply.code == 2, reply.body[:80]
            responses.append((reply.body, request))
    return tuple(responses)


def check_parse(body: bytes, request: CollectRequest) -> None:
    """The only acceptable outcomes of parse_response, whatever the body."""
    error: Exception | None = None
    try:
        result = parse_response(body, request)
    except (SectigoError, ResponseFormatError) as exc:
        error = exc
    if isinstance(error, SectigoError):
        head = body.partition(b"\n")[0]
        assert _NEGATIVE_STATUS.fullmatch(head), f"SectigoError without a negative status: {error}"
        assert error.code < 0
    elif error is not None:
        assert str(error), "an error must say what it saw"
    else:
        assert isinstance(result, CollectResult)
        assert result.order_number == request.order_number
        if result.status is Status.ATTACHED:
            assert result.chain is not None
            assert len(result.chain) > 0
            assert result.payload
        else:
            assert result.chain is None


_PEM_BLOCK = re.compile(rb"-{3,}[ \t]*BEGIN[^\n]*\n.*?-{3,}[ \t]*END[^\n]*\n?", re.DOTALL)
_STATUS_LINES = [
    b"2",
    b"1",
    b"0",
    b"-14",
    b"-16",
    b"-99999",
    b"3",
    b"+2",
    b"02",
    b" 2 ",
    b"2 2",
    b"",
]
_VALIDITY_LINES = [
    b"31/02/2024 01/01/2025",
    b"00/00/0000 00/00/0000",
    b"01/01/2025",
    b"2025-01-01 2026-01-01",
    b"01/01/2025 01/01/2024",
    b"9" * 300,
    b"\xff\xfe/01/2025 01/01/2026",
]


def _nest(der: bytes, levels: int, tag: int) -> bytes:
    for _ in range(levels):
        der = der_tlv(tag, der)
    return der


@st.composite
def damaged_response(draw: st.DrawFn) -> tuple[bytes, CollectRequest]:
    """A real response with one kind of damage."""
    body, request = draw(st.sampled_from(real_responses()))
    data = bytearray(body)
    kind = draw(
        st.sampled_from(
            ["flip", "truncate", "splice", "duplicate-block", "status", "validity", "nest", "huge"]
        )
    )
    position = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            spot = draw(st.integers(0, len(data) - 1))
            data[spot] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del data[position:]
    elif kind == "splice":
        # Crossover with another real response: the head of one, the tail of the other.
        other, _ = draw(st.sampled_from(real_responses()))
        data = data[:position] + other[draw(st.integers(0, len(other) - 1)) :]
    elif kind == "duplicate-block":
        blocks = _PEM_BLOCK.findall(body)
        if blocks:
            block = draw(st.sampled_from(blocks))
            cut = draw(st.integers(0, len(block)))
            data[position:position] = block[:cut]  # a whole block, or one cut short
    elif kind == "status":
        _, newline, rest = body.partition(b"\n")
        data = bytearray(draw(st.sampled_from(_STATUS_LINES)) + newline + rest)
    elif kind == "validity":
        lines = body.split(b"\n")
        lines[1 if len(lines) > 1 else 0] = draw(st.sampled_from(_VALIDITY_LINES))
        data = bytearray(b"\n".join(lines))
    elif kind == "nest":
        tag = draw(st.sampled_from([0x30, 0x31, 0xA0, 0xA1]))
        wrapped = _nest(bytes(data), draw(st.integers(1, 64)), tag)
        data = bytearray(wrapped if request.wants_binary else b"2\n" + base64.b64encode(wrapped))
    else:  # a DER length that claims 4 GiB, where a header would be
        data[position : position + 1] = b"\x84\xff\xff\xff\xff"
    return bytes(data), request


class TestParseResponseFuzz:
    """Damaged real responses: a result, ResponseFormatError, or SectigoError for "-N"."""

    def test_every_undamaged_response_parses(self) -> None:
        """The seeds themselves are good: ATTACHED with a chain, every shape and quirk."""
        seeds = real_responses()
        assert len(seeds) >= 3 * 20
        for body, request in seeds:
            result = parse_response(body, request)
            assert result.status is Status.ATTACHED
            assert result.chain is not None

    @FUZZ
    @given(damaged_response())
    def test_damaged_responses(self, case: tuple[bytes, CollectRequest]) -> None:
        """Flips, cuts, splices, duplicated blocks, odd status and validity lines, nesting."""
        check_parse(*case)

    @FUZZ
    @given(st.binary(max_size=2048), st.sampled_from(_requests()))
    @example(b"0" + b"\x30\x80" * 40, CollectRequest(1, response_encoding=ResponseEncoding.BINARY))
    @example(b"-14", CollectRequest(1))
    @example(b"-0\n", CollectRequest(1))
    @example(b"2\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", CollectRequest(1))
    def test_status_line_then_anything(self, tail: bytes, request: CollectRequest) -> None:
        """Each status line followed by arbitrary bytes, for every request shape."""
        for status in (b"2\n", b"1\n", b"0\n", b"-4\n"):
            check_parse(status + tail, request)


# -- ZIP members in every compression method ----------------------------------------------------

_METHODS = {
    "stored": zipfile.ZIP_STORED,
    "deflate": zipfile.ZIP_DEFLATED,
    "bzip2": zipfile.ZIP_BZIP2,
    "lzma": zipfile.ZIP_LZMA,
}


def _zip(content: bytes, method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("chain.pem", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = method
        archive.writestr(info, content)
    return buffer.getvalue()


def _member_data_offset(archive: bytes) -> int:
    """Where the first member's compressed data starts (after its local header, APPNOTE 4.3.7)."""
    name_length, extra_length = struct.unpack("<HH", archive[26:30])
    return 30 + int(name_length) + int(extra_length)


@functools.cache
def _chain_pem() -> bytes:
    return to_pem_blocks(
        TestCA.create("Fuzz responses").issue_smime("z@example.com").certificates()
    )


class TestZipMembers:
    """Damaged ZIP members never let a decompressor's own exception out."""

    @pytest.mark.parametrize("method", ["stored", "deflate"])
    def test_damaged_stored_and_deflate_members(self, method: str) -> None:
        """Every single-byte corruption of the member data: a chain or CertificateFormatError."""
        archive = _zip(_chain_pem(), _METHODS[method])
        assert load_certificates(archive).end_entity is not None
        start = _member_data_offset(archive)
        for offset in range(start, start + 64):
            damaged = bytearray(archive)
            damaged[offset] ^= 0x5A
            with contextlib.suppress(CertificateFormatError):
                load_certificates(bytes(damaged))

    @pytest.mark.parametrize("method", ["bzip2", "lzma"])
    def test_damaged_bzip2_and_lzma_members(self, method: str) -> None:
        """A damaged bzip2 or LZMA member: CertificateFormatError, not the decompressor's error."""
        archive = bytearray(_zip(_chain_pem(), _METHODS[method]))
        start = _member_data_offset(bytes(archive))
        # bzip2: the stream's "BZh9" magic; LZMA: the data past its 9-byte properties header.
        first = start if method == "bzip2" else start + 9
        for offset in range(first, first + 32):
            archive[offset] ^= 0x5A
        with pytest.raises(CertificateFormatError):
            load_certificates(bytes(archive))
        with pytest.raises(ResponseFormatError):
            parse_response(b"2\n" + bytes(archive), CollectRequest(1))

    def test_lzma_dictionary_size_is_bounded(self) -> None:
        """A tiny LZMA member declaring a 256 MiB dictionary costs less than 64 MiB of memory."""
        archive = bytearray(_zip(b"not a certificate", zipfile.ZIP_LZMA))
        start = _member_data_offset(bytes(archive))
        # LZMA properties in ZIP (APPNOTE 5.8.8): version (2), size (2), lc/lp/pb (1), dict (4).
        archive[start + 5 : start + 9] = struct.pack("<I", 256 * MiB)
        peak = peak_memory(lambda: load_certificates(bytes(archive)))
        assert peak < 64 * MiB


# -- large adversarial inputs: bounded memory, no super-linear work -----------------------------


class Hang(BaseException):
    """Raised by the watchdog: a BaseException, so no ``except Exception`` can swallow it."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of real time (SIGALRM; regex matching checks signals).

    This is a hang detector, not a timing assertion: the inputs below take milliseconds when
    the work is linear and hours when it is quadratic, so the limit sits orders of magnitude
    away from both.
    """

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise Hang(f"still working after {seconds} s: super-linear work on this input")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_memory(work: Callable[[], object]) -> int:
    """Peak traced memory (bytes) while ``work`` runs; its CollectError is expected and ignored."""
    tracemalloc.start()
    try:
        with contextlib.suppress(ResponseFormatError, SectigoError):
            work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _large_inputs() -> dict[str, bytes]:
    size = 4 * MiB  # the client's default max_response_bytes: the most a server can hand us
    noise = base64.b64encode(bytes(range(256)) * (size // 4 // 256 * 3))[:size]
    return {
        "4 MiB of spaces": b" " * size,
        "4 MiB of '0' (binary mode's ambiguous first byte)": b"0" * size,
        "status 2 and 4 MiB of base64 noise": b"2\n" + noise,
        "one 4 MiB PEM block": b"2\n-----BEGIN CERTIFICATE-----\n" + noise + b"\n-----END X---\n",
        "status 2 and 4 MiB of newlines": b"2\n" + b"\n" * size,
        "a 4 MiB validity line": b"2\n" + b"1" * size,
        "a 4 MiB error message": b"-14\n" + b"x" * size,
        "1024 PEM blocks of one certificate": b"2\n" + _one_certificate_pem() * 1024,
        "1025 PEM blocks": b"2\n" + _one_certificate_pem() * 1025,
        "BER nested 1 Mi levels deep": b"\x30\x80" * (size // 4) + b"\x00\x00" * (size // 4),
        "DER header claiming 4 GiB": b"2\n" + base64.b64encode(b"\x30\x84\xff\xff\xff\xff" * 1000),
        "'---x' repeated": b"2\n" + b"---x" * (size // 4),
        # Once quadratic (a marker pattern starting with -{3,}): 40 KB took 20 s.
        "4 MiB of dashes": b"2\n" + b"-" * size,
        "BEGIN, then 4 MiB of dashes": b"2\n-----BEGIN " + b"-" * size,
        "4 MiB of dashes, then END": b"2\n-----BEGIN CERTIFICATE" + b"-" * size + b"END",
        "a BEGIN line then 'END' a million times": (
            b"2\n-----BEGIN CERTIFICATE-----\n" + b" END" * (size // 16)
        ),
    }


@functools.cache
def _one_certificate_pem() -> bytes:
    return to_pem_blocks(
        TestCA.create("Fuzz responses").issue_smime("big@example.com").certificates()[:1]
    )


_BINARY_REQUEST = CollectRequest(
    1, response_type=ResponseType.PKCS7, response_encoding=ResponseEncoding.BINARY
)


class TestLargeAdversarialInputs:
    """4 MiB hostile bodies: typed errors, peak memory within a small multiple of the input."""

    @pytest.mark.parametrize("name", list(_large_inputs()))
    @pytest.mark.parametrize("binary", [False, True], ids=["text-request", "binary-request"])
    def test_bounded(self, name: str, binary: bool) -> None:
        """Peak traced memory stays under 8x the input + 2 MiB; no hang (60 s watchdog)."""
        body = _large_inputs()[name]
        request = _BINARY_REQUEST if binary else CollectRequest(1, show_validity_period=True)
        with watchdog(60.0):
            check_parse(body, request)
            peak = peak_memory(lambda: parse_response(body, request))
        assert peak <= 8 * len(body) + 2 * MiB, f"{name}: {peak / MiB:.1f} MiB peak"


# -- one hostile answer in a batch ----------------------------------------------------------------


def _damaged_zip(method: str) -> bytes:
    archive = bytearray(_zip(_chain_pem(), _METHODS[method]))
    start = _member_data_offset(bytes(archive))
    first = start if method == "bzip2" else start + 9
    for offset in range(first, first + 32):
        archive[offset] ^= 0x5A
    return bytes(archive)


_HOSTILE_PAYLOADS: dict[str, Callable[[], bytes]] = {
    "damaged-bzip2-zip": lambda: _damaged_zip("bzip2"),
    "damaged-lzma-zip": lambda: _damaged_zip("lzma"),
    "run-of-dashes": lambda: b"-" * (256 * 1024),
    "ber-nested-deep": lambda: b"\x30\x80" * 50_000 + b"\x00\x00" * 50_000,
    "4-gib-length": lambda: base64.b64encode(b"\x30\x84\xff\xff\xff\xff" + bytes(64)),
}


class TestBatchIsolation:
    """A hostile answer for one order is that order's error; the rest of the batch goes on."""

    @pytest.mark.parametrize(
        "payload",
        list(_HOSTILE_PAYLOADS),
    )
    async def test_one_hostile_answer(self, payload: str) -> None:
        """Orders 1-5, order 3 hostile: 5 outcomes, 4 collected, order 3 a ResponseFormatError."""
        hostile = b"2\n" + _HOSTILE_PAYLOADS[payload]()
        good = b"2\n" + _chain_pem()

        def answer(request: httpx.Request) -> httpx.Response:
            order = urllib.parse.parse_qs(request.content.decode("ascii"))["orderNumber"][0]
            return httpx.Response(200, content=hostile if order == "3" else good)

        async with CollectClient(LOGIN, PASSWORD, transport=httpx.MockTransport(answer)) as client:
            with watchdog(60.0):
                outcomes = {o.order_number: o async for o in client.collect_many(range(1, 6))}
        assert sorted(outcomes) == [1, 2, 3, 4, 5]
        assert [outcomes[n].ok for n in (1, 2, 4, 5)] == [True] * 4
        assert isinstance(outcomes[3].error, ResponseFormatError)
