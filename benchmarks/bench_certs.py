"""load_certificates against cryptography, in one run: ``python benchmarks/bench_certs.py``.

Contender: ``smime_collect.load_certificates`` on a 3-certificate PEM chain (end entity,
intermediate, root) - format sniffing, tolerant PEM scanning and classification included,
``verify()`` excluded.  Baseline: ``cryptography.x509.load_pem_x509_certificates`` on the same
bytes, which only parses.  Both run interleaved, round after round, and the ratio of the best
rounds is reported, so the figure holds on a shared, noisy machine where absolute times do not;
so is the median of each round's own ratio ("paired"), steadier while the machine stays busy.

Hierarchies:

- ``real``: the shape of Sectigo's S/MIME chain - an RSA-4096 root with a subject key identifier
  and no authority key identifier (so telling that it is self-signed takes a signature check), an
  RSA-2048 intermediate, RSA-2048 end entities.  Targets: batch <= 1.3x, cold <= 2x, and
  ``parse_response(b"2\\n" + chain)`` <= 1.1x ``load_certificates`` on the same chain.
- ``ec`` and ``rsa``: the test PKI's EC P-256 and RSA-2048 hierarchies, whose roots carry both key
  identifiers.

Scenarios:

- ``batch``: what a batch of orders looks like - every body has a different end entity under the
  same intermediate and root (the loader keeps what it read from CA certificates it has seen).
- ``cold``: every certificate is new to the process (the CA cache is emptied before each call):
  the worst case.
- ``sloppy``: ``batch`` again, but the bodies carry the endpoint page's sloppy markers
  (``----- BEGIN CERTIFICATE -----``, a four-dash END line) and CRLF, which only the tolerant
  scanner reads; the baseline parses the same certificates written as standard PEM.
- ``parse``: ``parse_response`` on ``b"2\\n"`` + the chain, against ``load_certificates`` on the
  chain alone, both in batch mode.

``SMIME_BENCH_CERTS_PLAIN=1`` runs everything with the shortcuts of ``_certs/_fast.py`` off.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509

from smime_collect import CollectRequest, load_certificates, parse_response
from smime_collect._certs import _fast
from smime_collect.testing._formats import to_pem_blocks
from smime_collect.testing._pki import TestCA

# Many short rounds: on a shared machine a round of a few milliseconds often runs without being
# preempted, and the best rounds are those.
ROUNDS = 300
CALLS_PER_ROUND = 20
DISTINCT_END_ENTITIES = 50
_REQUEST = CollectRequest(1234567)


def _hierarchy(kind: str) -> TestCA:
    if kind == "real":
        return TestCA.create_real_shaped("Bench real")
    return TestCA.create("Bench", key_type=kind)  # type: ignore[arg-type]


def _bodies(ca: TestCA) -> tuple[list[bytes], list[bytes]]:
    """Standard and sloppy PEM bodies of the same chains."""
    chains = [
        ca.issue_smime(f"user{i}@example.com").certificates() for i in range(DISTINCT_END_ENTITIES)
    ]
    standard = [to_pem_blocks(chain) for chain in chains]
    sloppy = [to_pem_blocks(chain, sloppy_markers=True, crlf=True) for chain in chains]
    return standard, sloppy


def _round(function: Callable[[bytes], object], bodies: Sequence[bytes], offset: int) -> float:
    """Seconds per call over one round, from ``bodies[offset]`` on."""
    count = len(bodies)
    start = time.perf_counter()
    for i in range(offset, offset + CALLS_PER_ROUND):
        function(bodies[i % count])
    return (time.perf_counter() - start) / CALLS_PER_ROUND


def _cold_load(body: bytes) -> object:
    _fast.ca_cache.clear()
    return load_certificates(body)


def _parse(body: bytes) -> object:
    return parse_response(body, _REQUEST)


def _compare(
    contender: Callable[[bytes], object],
    bodies: Sequence[bytes],
    baseline: Callable[[bytes], object],
    baseline_bodies: Sequence[bytes],
) -> tuple[float, float, float]:
    """Best-round seconds per call of (baseline, contender), and their median paired ratio.

    Each round measures the baseline, then the contender on the same bodies; the ratio of the two
    in one round shares that moment's load, so their median is the steadier figure when the
    machine is busy throughout, the best rounds the more exact one when it is not.
    """
    baseline_times, contender_times = [], []
    for number in range(ROUNDS):
        offset = number * CALLS_PER_ROUND
        baseline_times.append(_round(baseline, baseline_bodies, offset))
        contender_times.append(_round(contender, bodies, offset))
    print(
        f"    median: baseline {statistics.median(baseline_times) * 1e6:7.1f} us, "
        f"contender {statistics.median(contender_times) * 1e6:7.1f} us"
    )
    paired = statistics.median(c / b for b, c in zip(baseline_times, contender_times, strict=True))
    return min(baseline_times), min(contender_times), paired


Load = Callable[[bytes], object]


def _scenarios(
    kind: str, standard: list[bytes], sloppy: list[bytes]
) -> list[tuple[str, Load, list[bytes], Load, list[bytes]]]:
    """(name, contender, its bodies, baseline, its bodies) of each scenario."""
    parse_cryptography = x509.load_pem_x509_certificates
    scenarios = [
        ("batch", load_certificates, standard, parse_cryptography, standard),
        ("cold", _cold_load, standard, parse_cryptography, standard),
    ]
    if kind == "real":
        responses = [b"2\n" + body for body in standard]
        scenarios.append(("parse", _parse, responses, load_certificates, standard))
    else:
        scenarios.append(("sloppy", load_certificates, sloppy, parse_cryptography, standard))
    return scenarios


def main() -> dict[str, float]:
    """Run every scenario; print and return the figures (microseconds and ratios)."""
    figures: dict[str, float] = {}
    plain = os.environ.get("SMIME_BENCH_CERTS_PLAIN") == "1"
    with _fast.disabled() if plain else contextlib.nullcontext():
        for kind in ("real", "ec", "rsa"):
            ca = _hierarchy(kind)
            standard, sloppy = _bodies(ca)
            chain = load_certificates(standard[0])
            assert len(chain) == 3
            assert chain.end_entity is not None
            assert chain.roots == (ca.root,)
            assert load_certificates(sloppy[0]) == chain
            for scenario, contender, bodies, baseline, baseline_bodies in _scenarios(
                kind, standard, sloppy
            ):
                print(f"  {kind} {scenario}:")
                base, ours, paired = _compare(contender, bodies, baseline, baseline_bodies)
                ratio = ours / base
                print(
                    f"    best:   baseline {base * 1e6:7.1f} us, "
                    f"contender {ours * 1e6:7.1f} us, ratio {ratio:.2f}x (paired {paired:.2f}x)"
                )
                figures[f"{kind}_{scenario}_baseline_us"] = round(base * 1e6, 1)
                figures[f"{kind}_{scenario}_us"] = round(ours * 1e6, 1)
                figures[f"{kind}_{scenario}_ratio"] = round(ratio, 2)
                figures[f"{kind}_{scenario}_paired_ratio"] = round(paired, 2)
    return figures


if __name__ == "__main__":
    main()
