"""load_certificates against cryptography, in one run: ``python benchmarks/bench_certs.py``.

Contender: ``smime_collect.load_certificates`` on a 3-certificate PEM chain (end entity,
intermediate, root) - format sniffing, tolerant PEM scanning and classification included,
``verify()`` excluded.  Baseline: ``cryptography.x509.load_pem_x509_certificates`` on the same
bytes, which only parses.  Both run interleaved, round after round, and the ratio of the best
rounds is reported, so the figure holds on a shared, noisy machine where absolute times do not.

Scenarios, for an EC P-256 and an RSA-2048 hierarchy:

- ``batch``: what a batch of orders looks like - every body has a different end entity under the
  same intermediate and root (the loader keeps what it read from CA certificates it has seen).
- ``cold``: every certificate is new to the process (the CA cache is emptied before each call):
  the worst case.
- ``sloppy``: ``batch`` again, but the bodies carry the endpoint page's sloppy markers
  (``----- BEGIN CERTIFICATE -----``, a four-dash END line) and CRLF, which only the tolerant
  scanner reads; the baseline parses the same certificates written as standard PEM.

Standard PEM takes a shortcut in ``load_certificates``; ``sloppy`` shows what text that misses it
costs (the shortcut's failed attempt included).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509

from smime_collect import load_certificates
from smime_collect._certs import _facts
from smime_collect.testing._formats import to_pem_blocks
from smime_collect.testing._pki import TestCA

ROUNDS = 60
CALLS_PER_ROUND = 100
DISTINCT_END_ENTITIES = 50


def _bodies(key_type: str) -> tuple[list[bytes], list[bytes]]:
    """Standard and sloppy PEM bodies of the same chains."""
    ca = TestCA.create("Bench", key_type=key_type)  # type: ignore[arg-type]
    chains = [
        ca.issue_smime(f"user{i}@example.com").certificates() for i in range(DISTINCT_END_ENTITIES)
    ]
    standard = [to_pem_blocks(chain) for chain in chains]
    sloppy = [to_pem_blocks(chain, sloppy_markers=True, crlf=True) for chain in chains]
    return standard, sloppy


def _round(function: Callable[[bytes], object], bodies: Sequence[bytes]) -> float:
    """Seconds per call over one round."""
    count = len(bodies)
    start = time.perf_counter()
    for i in range(CALLS_PER_ROUND):
        function(bodies[i % count])
    return (time.perf_counter() - start) / CALLS_PER_ROUND


def _cold_load(body: bytes) -> object:
    _facts.clear_ca_cache()
    return load_certificates(body)


def _compare(
    contender: Callable[[bytes], object], bodies: Sequence[bytes], baseline_bodies: Sequence[bytes]
) -> tuple[float, float]:
    """Best-round seconds per call of (baseline, contender), measured interleaved."""
    baseline_times, contender_times = [], []
    for _ in range(ROUNDS):
        baseline_times.append(_round(x509.load_pem_x509_certificates, baseline_bodies))
        contender_times.append(_round(contender, bodies))
    # The minimum is the run least disturbed by other processes; the median is printed alongside.
    print(
        f"    median: baseline {statistics.median(baseline_times) * 1e6:7.1f} us, "
        f"load_certificates {statistics.median(contender_times) * 1e6:7.1f} us"
    )
    return min(baseline_times), min(contender_times)


def main() -> dict[str, float]:
    """Run every scenario; print and return the figures (microseconds and ratios)."""
    figures: dict[str, float] = {}
    for key_type in ("ec", "rsa"):
        standard, sloppy = _bodies(key_type)
        chain = load_certificates(standard[0])
        assert len(chain) == 3
        assert chain.end_entity is not None
        assert load_certificates(sloppy[0]) == chain
        for scenario, contender, bodies in (
            ("batch", load_certificates, standard),
            ("cold", _cold_load, standard),
            ("sloppy", load_certificates, sloppy),
        ):
            print(f"  {key_type} {scenario}:")
            baseline, ours = _compare(contender, bodies, standard)
            ratio = ours / baseline
            print(
                f"    best:   baseline {baseline * 1e6:7.1f} us, "
                f"load_certificates {ours * 1e6:7.1f} us, ratio {ratio:.2f}x"
            )
            figures[f"{key_type}_{scenario}_baseline_us"] = round(baseline * 1e6, 1)
            figures[f"{key_type}_{scenario}_us"] = round(ours * 1e6, 1)
            figures[f"{key_type}_{scenario}_ratio"] = round(ratio, 2)
    return figures


if __name__ == "__main__":
    main()
