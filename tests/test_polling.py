"""The sans-I/O retry and poll decisions: values in, decisions out, no clock and no sleeping."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smime_collect import (
    CallLimitError,
    CertificateRejectedError,
    InvalidRequestError,
    TransportError,
    _polling,
    _rules,
)
from smime_collect._polling import (
    Failure,
    GiveUp,
    PollAgain,
    PollPolicy,
    Retry,
    RetryPolicy,
    TimedOut,
    decide_poll,
    decide_retry,
    next_poll_delay,
    parse_retry_after,
    reserve_slot,
    retry_delay,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICY = RetryPolicy(base_delay=0.5, max_delay=30.0, min_delay=0.1, max_retry_after=120.0)


class TestTransience:
    """Which failures are retried, which slow the whole client, which stop a batch."""

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    def test_transient_http_statuses(self, status: int) -> None:
        """429 and the server-side hiccups are retried."""
        assert _polling.is_transient_status(status)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 408, 413, 501, 505, 302])
    def test_other_http_statuses_are_not_transient(self, status: int) -> None:
        """Everything else (501 included) is a TransportError at once."""
        assert not _polling.is_transient_status(status)

    @pytest.mark.parametrize("code", sorted(_rules.CODES))
    def test_only_minus_14_and_minus_42_are_transient_codes(self, code: int) -> None:
        """Sectigo's unknown error and call limit are retried; no other documented code is."""
        assert _polling.is_transient_code(code) is (code in {-14, -42})

    @pytest.mark.parametrize("code", sorted(_rules.CODES))
    def test_account_level_codes(self, code: int) -> None:
        """-1, -2, -3, -16, -17 concern the account or request shape, not one order."""
        assert _polling.is_account_level_code(code) is (code in {-1, -2, -3, -16, -17})

    def test_rate_limits(self) -> None:
        """HTTP 429 and -42 slow the whole client; 503 and -14 do not."""
        assert _polling.is_rate_limit(status_code=429)
        assert _polling.is_rate_limit(code=-42)
        assert not _polling.is_rate_limit(status_code=503)
        assert not _polling.is_rate_limit(code=-14)
        assert not _polling.is_rate_limit()


class TestRetryAfter:
    """``Retry-After`` in both RFC 9110 forms."""

    @pytest.mark.parametrize(
        ("header", "seconds"),
        [("0", 0.0), ("1", 1.0), ("120", 120.0), (" 7 ", 7.0), ("86400", 86400.0)],
        ids=["zero", "one", "two-minutes", "padded", "a-day"],
    )
    def test_delta_seconds(self, header: str, seconds: float) -> None:
        """Delta-seconds are read as they are (clamping is retry_delay's job)."""
        assert parse_retry_after(header, now=NOW) == seconds

    def test_http_date_in_the_future(self) -> None:
        """An HTTP-date gives the seconds from now until then."""
        header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
        assert parse_retry_after(header, now=NOW) == pytest.approx(90.0)

    def test_http_date_in_the_past_means_now(self) -> None:
        """A date already gone is zero seconds, never negative."""
        header = format_datetime(NOW - timedelta(hours=1), usegmt=True)
        assert parse_retry_after(header, now=NOW) == 0.0

    def test_obsolete_date_forms(self) -> None:
        """RFC 850 and asctime dates (obsolete but allowed by RFC 9110) are read as GMT."""
        assert parse_retry_after("Friday, 02-Jan-26 03:05:05 GMT", now=NOW) == pytest.approx(60)
        assert parse_retry_after("Fri Jan  2 03:06:05 2026", now=NOW) == pytest.approx(120)

    @pytest.mark.parametrize("header", ["", "soon", "-5", "1.5", "Tue, 99 Foo 2026", "٣"], ids=repr)
    def test_unreadable_header_is_ignored(self, header: str) -> None:
        """A header that is neither form gives None: the backoff applies instead."""
        assert parse_retry_after(header, now=NOW) is None

    def test_absent_header(self) -> None:
        """No header, no server preference."""
        assert parse_retry_after(None, now=NOW) is None

    def test_huge_delta_does_not_explode(self) -> None:
        """A thousand digits neither hang nor overflow (retry_delay then clamps it)."""
        assert parse_retry_after("9" * 1000, now=NOW) == pytest.approx(999999999999.0)


class TestRetryDelay:
    """Exponential backoff with full jitter, a cap, a floor and the deadline."""

    @pytest.mark.parametrize(
        ("retry", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (60, 30.0)]
    )
    def test_full_jitter_ceiling_doubles_up_to_the_cap(self, retry: int, ceiling: float) -> None:
        """With the largest random draw the wait is base * 2**retry, capped at max_delay."""
        assert retry_delay(POLICY, retry, 0.999999) == pytest.approx(ceiling, rel=1e-5)

    def test_full_jitter_scales_with_the_draw(self) -> None:
        """Half the draw, half the ceiling: the jitter is 'full', from zero to the ceiling."""
        assert retry_delay(POLICY, 3, 0.5) == pytest.approx(2.0)

    def test_zero_draw_is_floored(self) -> None:
        """A zero jitter draw still waits min_delay: no immediate hammering."""
        assert retry_delay(POLICY, 0, 0.0) == POLICY.min_delay

    def test_retry_after_zero_is_never_a_busy_loop(self) -> None:
        """Retry-After: 0 keeps the floor and the backoff."""
        assert retry_delay(POLICY, 0, 0.0, retry_after=0.0) == POLICY.min_delay
        assert retry_delay(POLICY, 2, 0.5, retry_after=0.0) == pytest.approx(1.0)

    def test_retry_after_is_a_lower_bound(self) -> None:
        """The server's wish wins over a shorter backoff."""
        assert retry_delay(POLICY, 0, 0.5, retry_after=7.0) == 7.0

    def test_absurd_retry_after_is_clamped(self) -> None:
        """A day-long Retry-After is clamped to max_retry_after."""
        assert retry_delay(POLICY, 0, 0.5, retry_after=86400.0) == 120.0

    def test_never_past_the_deadline(self) -> None:
        """The wait is clamped to the time left, and to zero when it is gone."""
        assert retry_delay(POLICY, 0, 0.5, retry_after=60.0, remaining=3.0) == 3.0
        assert retry_delay(POLICY, 9, 0.9, remaining=-1.0) == 0.0

    @settings(max_examples=200)
    @given(
        retry=st.integers(0, 10_000),
        draw=st.floats(0.0, 1.0, exclude_max=True),
        after=st.none() | st.floats(0.0, 1e12),
        remaining=st.none() | st.floats(-10.0, 1e6),
    )
    def test_always_bounded(
        self, retry: int, draw: float, after: float | None, remaining: float | None
    ) -> None:
        """Whatever the inputs, the wait is between 0 and the largest allowed wait."""
        delay = retry_delay(POLICY, retry, draw, retry_after=after, remaining=remaining)
        assert 0.0 <= delay <= max(POLICY.max_delay, POLICY.max_retry_after)
        if remaining is not None:
            assert delay <= max(0.0, remaining)
        else:
            assert delay >= POLICY.min_delay

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_retries": -1},
            {"max_retries": True},
            {"base_delay": 0},
            {"max_delay": float("inf")},
            {"min_delay": -1},
            {"max_retry_after": float("nan")},
        ],
        ids=repr,
    )
    def test_policy_validates(self, kwargs: dict[str, object]) -> None:
        """A policy that could loop forever or never wait is refused."""
        with pytest.raises(InvalidRequestError, match=next(iter(kwargs))):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


class TestPollDelay:
    """Poll waits grow from poll_interval to max_poll_interval, with jitter."""

    def test_first_wait_is_the_poll_interval(self) -> None:
        """After the first 'processing' answer the wait is exactly poll_interval."""
        for draw in (0.0, 0.5, 0.99):
            assert next_poll_delay(0, draw, poll_interval=5, max_poll_interval=60) == 5

    def test_grows_with_jitter(self) -> None:
        """The nominal wait doubles; the draw picks between its half and the whole."""
        assert next_poll_delay(2, 0.0, poll_interval=5, max_poll_interval=60) == 10
        assert next_poll_delay(2, 0.999, poll_interval=5, max_poll_interval=60) == pytest.approx(
            20, rel=1e-3
        )

    def test_capped_at_max_poll_interval(self) -> None:
        """Late polls wait at most max_poll_interval, at least half of it."""
        for poll in (4, 10, 1000):
            assert 30 <= next_poll_delay(poll, 0.3, poll_interval=5, max_poll_interval=60) <= 60

    def test_never_past_the_deadline(self) -> None:
        """The wait is clamped to the time left."""
        assert next_poll_delay(5, 0.9, poll_interval=5, max_poll_interval=60, remaining=2) == 2

    @settings(max_examples=200)
    @given(
        poll=st.integers(0, 10_000),
        draw=st.floats(0.0, 1.0, exclude_max=True),
        interval=st.floats(0.01, 100.0),
        extra=st.floats(0.0, 1000.0),
    )
    def test_always_within_the_interval_bounds(
        self, poll: int, draw: float, interval: float, extra: float
    ) -> None:
        """poll_interval <= wait <= max_poll_interval, for any poll number and draw."""
        ceiling = interval + extra
        delay = next_poll_delay(poll, draw, poll_interval=interval, max_poll_interval=ceiling)
        assert interval <= delay <= ceiling * (1 + 1e-9)


TRANSIENT = Failure(TransportError("order 1: HTTP 503"), transient=True)
FINAL = Failure(CertificateRejectedError(-20, "rejected", 1), transient=False)
RATE_LIMITED = Failure(CallLimitError(-42, "slow down", 1), transient=True, rate_limited=True)


class TestDecideRetry:
    """A failed attempt in, Retry(delay) or GiveUp(error) out."""

    def test_transient_failure_is_retried_after_the_backoff(self) -> None:
        """Retry 2 of a 503 waits base * 2**2 scaled by the draw, for this request only."""
        decision = decide_retry(POLICY, 2, TRANSIENT, now=100.0, random=0.5)
        assert decision == Retry(1.0)

    def test_final_failure_gives_up_at_once(self) -> None:
        """A rejected order is not retried, whatever retries are left."""
        assert decide_retry(POLICY, 0, FINAL, now=100.0, random=0.5) == GiveUp(FINAL.error)

    def test_retries_used_up(self) -> None:
        """After max_retries retries the last error is the answer."""
        policy = RetryPolicy(max_retries=2)
        assert isinstance(decide_retry(policy, 1, TRANSIENT, now=0.0, random=0.5), Retry)
        assert decide_retry(policy, 2, TRANSIENT, now=0.0, random=0.5) == GiveUp(TRANSIENT.error)

    def test_retry_wait_never_passes_the_deadline(self) -> None:
        """A 60 s Retry-After with 3 s left waits 3 s; with none left, 0 s."""
        failure = Failure(TRANSIENT.error, transient=True, retry_after=60.0)
        assert decide_retry(POLICY, 0, failure, now=7.0, deadline=10.0, random=0.5) == Retry(3.0)
        assert decide_retry(POLICY, 0, failure, now=11.0, deadline=10.0, random=0.5) == Retry(0.0)

    def test_rate_limit_slows_the_whole_client(self) -> None:
        """A -42 leaves the wait to the client's pacing, for every request, past any deadline."""
        failure = attrs.evolve(RATE_LIMITED, retry_after=30.0)
        decision = decide_retry(POLICY, 0, failure, now=100.0, deadline=110.0, random=0.5)
        assert decision == Retry(0.0, slow_down_until=130.0)

    def test_rate_limit_slows_the_client_even_when_giving_up(self) -> None:
        """The last 429 of a request still holds back the client's other requests."""
        policy = RetryPolicy(max_retries=0)
        decision = decide_retry(policy, 0, RATE_LIMITED, now=100.0, random=0.5)
        assert decision == GiveUp(RATE_LIMITED.error, slow_down_until=100.25)


class TestDecidePoll:
    """A "not ready yet" answer in, PollAgain(delay) or TimedOut out."""

    POLICY = PollPolicy(timeout=100.0, poll_interval=5.0, max_poll_interval=60.0)

    def test_polls_again_after_the_interval(self) -> None:
        """The first wait is poll_interval."""
        decision = decide_poll(self.POLICY, 0, now=10.0, deadline=100.0, random=0.9)
        assert decision == PollAgain(5.0)

    def test_wait_cut_at_the_deadline(self) -> None:
        """A 40 s nominal wait with 2 s left waits 2 s."""
        decision = decide_poll(self.POLICY, 5, now=98.0, deadline=100.0, random=0.9)
        assert decision == PollAgain(2.0)

    @pytest.mark.parametrize("now", [100.0, 150.0])
    def test_timed_out_at_the_deadline(self, now: float) -> None:
        """At or after the deadline nothing more is sent."""
        assert decide_poll(self.POLICY, 0, now=now, deadline=100.0, random=0.5) == TimedOut()

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"timeout": 0},
            {"poll_interval": -1},
            {"max_poll_interval": float("nan")},
            {"poll_interval": 10, "max_poll_interval": 5},
            {"timeout": True},
        ],
        ids=repr,
    )
    def test_policy_validates(self, kwargs: dict[str, object]) -> None:
        """Nonsense polling options are an InvalidRequestError naming the option."""
        with pytest.raises(InvalidRequestError, match=next(reversed(kwargs))):
            PollPolicy(**kwargs)  # type: ignore[arg-type]


def test_reserve_slot_spaces_starts() -> None:
    """A requests-per-second limit books consecutive starts one interval apart."""
    start1, free = reserve_slot(float("-inf"), 10.0, 0.5)
    start2, free = reserve_slot(free, 10.0, 0.5)
    start3, free = reserve_slot(free, 20.0, 0.5)
    assert (start1, start2, start3, free) == (10.0, 10.5, 20.0, 20.5)


def test_polling_module_is_sans_io() -> None:
    """_polling imports neither httpx nor asyncio, and has no clock or sleep of its own."""
    tree = ast.parse(Path(_polling.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"httpx", "asyncio", "time", "anyio", "socket", "random"}
