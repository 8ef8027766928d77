"""One account budget for many processes and machines, kept on a Redis server.

``RedisBudget`` is what ``LocalBudget`` is for the clients of one process, for every process that
points at the same Redis (``smime-collect[redis]``, on redis-py's asyncio client)::

    from smime_collect import CollectClient
    from smime_collect.redis import RedisBudget

    budget = RedisBudget("redis://localhost:6379/0", max_concurrency=4)
    async with CollectClient.from_env(budget=budget) as client:
        ...

Each step is one Lua script, so that it is atomic, and reads the Redis server's clock (``TIME``),
since the machines' clocks may disagree.  A slot is a lease: a process that dies while holding one
gives it back when the lease runs out.  A request that finds every slot taken waits on a wake-up
list (``BLPOP``) that each release pushes to, re-checking at least every ``poll_interval`` seconds
(that is how an expired lease comes back); the other waiting requests of the process queue up
behind the one that watches.  A slot given back with an ordinary answer stays with its process
for ``hand_over`` seconds: its next request takes it over in one script, which moves the slot
to a new lease and checks the slow-down, the start rate and the login as any acquire does, and
the release returns without waiting for Redis.  A busy process so costs one round trip per
request; a slot goes back to Redis after a few hand-overs, so that other processes get their
turn, and at once after the probe's answer or a -16.  When Redis cannot be reached nothing is
sent: the request fails with ``BudgetUnavailableError``, which the client retries as it retries
a network failure.  How to run it: ``docs/how-to/fleet.md``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ._client._budget import BudgetTicket, LoginVerdict, check_budget_options, login_locked
from ._client._pacing import SlotRelay
from ._exceptions import BudgetUnavailableError, InvalidRequestError

__all__ = ["RedisBudget"]

_LOGGER = logging.getLogger("smime_collect")
_T = TypeVar("_T")
_STATE_TTL_MS: Final = 86_400_000  # an idle account's state is forgotten after a day

# Every script starts from the server's clock, in milliseconds.
_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: slots (a sorted set of lease ids by expiry), state (a hash), wake (a list).
# ARGV: lease id, lease ms, max_concurrency, start interval ms, probe_first, state ttl ms, and the
# lease id and login verdict of a slot this process hands over ('' when none).
# Returns {0, probe} (granted), {1, ms} (wait ms; -1: until a release), or
# {2, rejected_at, until, now} (the login guard holds).  A slot handed over goes to the new lease
# in the same step, or back to everybody (with a wake-up) when the request has to wait.
_ACQUIRE: Final = (
    _NOW
    + """
local slots, state, wake = KEYS[1], KEYS[2], KEYS[3]
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
local handed = ARGV[7] ~= '' and redis.call('ZSCORE', slots, ARGV[7])
if handed and ARGV[8] == 'accepted' and redis.call('HGET', state, 'login') ~= 'rejected' then
  redis.call('HSET', state, 'login', 'accepted')
end
local function refuse(answer)
  if handed then
    redis.call('ZREM', slots, ARGV[7])
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, tonumber(ARGV[3]) - 1)
    redis.call('PEXPIRE', wake, 60000)
  end
  return answer
end
local s = redis.call('HMGET', state, 'login', 'rejected_at', 'until', 'probe_until',
                     'slow_until', 'next_start')
local login = s[1]
local probe = 0
if login == 'rejected' then
  local untl = tonumber(s[3]) or 0
  if now < untl then return refuse({2, tonumber(s[2]) or 0, untl, now}) end
end
if login == 'rejected' or (login ~= 'accepted' and ARGV[5] == '1') then
  if (tonumber(s[4]) or 0) > now then return refuse({1, -1}) end
  probe = 1
end
if not handed and redis.call('ZCARD', slots) >= tonumber(ARGV[3]) then return {1, -1} end
local slow = tonumber(s[5]) or 0
if slow > now then return refuse({1, slow - now}) end
local interval = tonumber(ARGV[4])
if interval > 0 then
  local next_start = tonumber(s[6]) or 0
  if next_start > now then return refuse({1, next_start - now}) end
  redis.call('HSET', state, 'next_start', now + interval)
end
local lease = tonumber(ARGV[2])
if handed then redis.call('ZREM', slots, ARGV[7]) end
redis.call('ZADD', slots, now + lease, ARGV[1])
if probe == 1 then redis.call('HSET', state, 'probe', ARGV[1], 'probe_until', now + lease) end
redis.call('PEXPIRE', slots, math.max(lease, tonumber(ARGV[6])))
redis.call('PEXPIRE', state, tonumber(ARGV[6]))
return {0, probe}
"""
)

# KEYS: slots, state, wake.  ARGV: lease id, verdict, login_cooldown ms, max_concurrency, ttl ms.
_RELEASE: Final = (
    _NOW
    + """
local slots, state, wake = KEYS[1], KEYS[2], KEYS[3]
redis.call('ZREM', slots, ARGV[1])
local mine = redis.call('HGET', state, 'probe') == ARGV[1]
local wakes = 1
if ARGV[2] == 'rejected' then
  redis.call('HSET', state, 'login', 'rejected', 'rejected_at', now,
             'until', now + tonumber(ARGV[3]))
elseif ARGV[2] == 'accepted' then
  if mine or redis.call('HGET', state, 'login') ~= 'rejected' then
    redis.call('HSET', state, 'login', 'accepted')
  end
end
if mine then
  redis.call('HDEL', state, 'probe', 'probe_until')
  wakes = tonumber(ARGV[4])
end
for i = 1, wakes do redis.call('LPUSH', wake, 1) end
redis.call('LTRIM', wake, 0, tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', wake, 60000)
redis.call('PEXPIRE', state, tonumber(ARGV[5]))
return 1
"""
)

# KEYS: state.  ARGV: ms from now, ttl ms.
_SLOW_DOWN: Final = (
    _NOW
    + """
local later = now + tonumber(ARGV[1])
if later > (tonumber(redis.call('HGET', KEYS[1], 'slow_until')) or 0) then
  redis.call('HSET', KEYS[1], 'slow_until', later)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
)

# KEYS: state, wake.  ARGV: max_concurrency.
_RESET_LOGIN: Final = """
redis.call('HDEL', KEYS[1], 'login', 'rejected_at', 'until', 'probe', 'probe_until')
for i = 1, tonumber(ARGV[1]) do redis.call('LPUSH', KEYS[2], 1) end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
redis.call('PEXPIRE', KEYS[2], 60000)
return 1
"""


# A slot goes from one request of a process to its next at most this many times in a row, then
# back to Redis: a busy process would otherwise keep its slots while other processes wait.
_MOST_HAND_OVERS: Final = 8


@attrs.define(eq=False)
class _Kept:
    """A slot given back by a request and kept for the next one of this process."""

    token: str
    verdict: LoginVerdict
    runs: int  # requests this slot served since it came from Redis, minus one


class RedisBudget:
    """The account budget of every process and machine that shares one Redis server.

    Args:
        redis: A ``redis.asyncio.Redis`` client, or a URL (``redis://host:port/db``,
            ``rediss://`` for TLS, ``unix://``) to make one from.
        max_concurrency: Requests in flight at once for one account, among all processes.
        requests_per_second: An optional limit on request starts for one account.
        login_cooldown: Seconds without any request for an account after a -16.
        lease_seconds: How long a slot stays taken when its process dies before giving it
            back.  Default: the client's request timeout (every phase's), plus 10 s; a shorter
            lease could expire under a slow request that is still running.
        namespace: The prefix of every key this budget writes.
        probe_first: Send one request for an account whose login has not been accepted yet
            before all others (a fleet that starts at once sends a wrong password once).
        call_timeout: Seconds for one Redis call (connecting included) before the budget
            counts as unreachable.
        poll_interval: The longest a waiting request goes without checking the slots again
            (an expired lease is seen then).
        hand_over: Seconds a slot given back stays with this process for its next request
            of the account, which then takes it over in one Redis step; 0 gives every slot
            back at once.

    Raises:
        InvalidRequestError: An option is out of range, or the URL is not a Redis URL.
    """

    def __init__(
        self,
        redis: aioredis.Redis | str,
        *,
        max_concurrency: int = 4,
        requests_per_second: float | None = None,
        login_cooldown: float = 600.0,
        lease_seconds: float | None = None,
        namespace: str = "smime-collect",
        probe_first: bool = True,
        call_timeout: float = 5.0,
        poll_interval: float = 0.5,
        hand_over: float = 0.005,
    ) -> None:
        interval = check_budget_options(max_concurrency, requests_per_second, login_cooldown)
        for name, value in (
            ("lease_seconds", lease_seconds),
            ("call_timeout", call_timeout),
            ("poll_interval", poll_interval),
        ):
            if value is not None and not (isinstance(value, int | float) and 0 < value < math.inf):
                raise InvalidRequestError(f"{name} must be a number of seconds > 0, not {value!r}")
        if not (isinstance(hand_over, int | float) and 0 <= hand_over < math.inf):
            raise InvalidRequestError(
                f"hand_over must be a number of seconds >= 0, not {hand_over!r}"
            )
        self._owns_client = isinstance(redis, str)
        if isinstance(redis, str):
            try:
                redis = aioredis.Redis.from_url(
                    redis, socket_connect_timeout=call_timeout, socket_keepalive=True
                )
            except ValueError as exc:  # the message names the scheme, not the password
                raise InvalidRequestError(f"not a Redis URL: {exc}") from None
        self._redis = redis
        self.max_concurrency = max_concurrency
        self.login_cooldown = float(login_cooldown)
        self.lease_seconds = lease_seconds
        self.namespace = namespace
        self._interval_ms = 0 if interval is None else max(1, round(interval * 1000))
        self._probe_first = probe_first
        self._call_timeout = call_timeout
        self._poll_interval = poll_interval
        self._ttl_ms = max(_STATE_TTL_MS, round(self.login_cooldown * 2000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._slow_down = redis.register_script(_SLOW_DOWN)
        self._reset_login = redis.register_script(_RESET_LOGIN)
        self._local: dict[tuple[str, str], asyncio.Semaphore] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        self._relay: SlotRelay[tuple[str, str], _Kept] = SlotRelay(hand_over, self._give_kept_back)
        self._paused: dict[tuple[str, str], float] = {}  # slow-downs asked for here, loop time
        self._runs: dict[str, int] = {}  # lease id -> requests its slot served before it
        # Requests of this process per account, from the start of acquire to their release:
        # when none is left, nothing here is about to take a kept slot over.
        self._busy: collections.Counter[tuple[str, str]] = collections.Counter()

    def __repr__(self) -> str:
        return (
            f"RedisBudget({self._where()}, max_concurrency={self.max_concurrency}, "
            f"namespace={self.namespace!r})"
        )

    def _where(self) -> str:
        # Host and port only: a Redis URL may hold a password.
        kwargs = self._redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    def _keys(self, base_url: str, login_name: str) -> tuple[str, str, str]:
        # The account's keys share one hash tag, so that a script's keys sit on one Redis
        # Cluster node; the digest keeps odd characters of URLs and names out of key names.
        digest = hashlib.sha256(f"{base_url}\n{login_name}".encode()).hexdigest()[:32]
        prefix = f"{self.namespace}:{{{digest}}}"
        return f"{prefix}:slots", f"{prefix}:state", f"{prefix}:wake"

    async def _call(self, call: Awaitable[_T], extra: float = 0.0) -> _T:
        """One Redis call, bounded in time; any failure is a BudgetUnavailableError."""
        try:
            async with asyncio.timeout(self._call_timeout + extra):
                return await call
        except (RedisError, OSError, TimeoutError) as exc:
            # A connection cut in the middle of a reply cannot be reused: start afresh.
            with contextlib.suppress(RedisError, OSError):
                await self._redis.connection_pool.disconnect()
            detail = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                detail = f"no answer within {self._call_timeout + extra:g} s"
            raise BudgetUnavailableError(
                f"the account budget on Redis at {self._where()} cannot be used ({detail}); "
                "nothing was sent -- check that Redis runs there (--redis-url)"
            ) from exc

    async def acquire(
        self, base_url: str, login_name: str, *, max_wait: float | None, hold: float = 50.0
    ) -> BudgetTicket | None:
        """Wait for a request slot for the account (see ``AccountBudget.acquire``).

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            max_wait: Seconds the caller may wait, or None.
            hold: The longest the caller holds the slot: the default lease's length.

        Returns:
            The ticket to release, or None when ``max_wait`` ran out first.

        Raises:
            AuthenticationError: The login was rejected less than ``login_cooldown`` ago.
            BudgetUnavailableError: Redis cannot be reached or answers with an error.
        """
        key = (base_url, login_name)
        self._busy[key] += 1
        ticket = None
        try:
            ticket = await self._acquire_slot(key, hold, max_wait)
        finally:
            if ticket is None:
                self._busy[key] -= 1
        return ticket

    async def _acquire_slot(
        self, key: tuple[str, str], hold: float, max_wait: float | None
    ) -> BudgetTicket | None:
        loop = asyncio.get_running_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        local = self._local.setdefault(key, asyncio.Semaphore(self.max_concurrency))
        try:
            async with asyncio.timeout_at(deadline):
                await local.acquire()
        except TimeoutError:
            return None
        try:
            ticket = await self._take(*key, hold, deadline)
        except BaseException:
            local.release()
            raise
        if ticket is None:
            local.release()
        return ticket

    async def _take(
        self, base_url: str, login_name: str, hold: float, deadline: float | None
    ) -> BudgetTicket | None:
        loop = asyncio.get_running_loop()
        key = (base_url, login_name)
        keys = self._keys(base_url, login_name)
        token = uuid.uuid4().hex
        lease = self.lease_seconds if self.lease_seconds is not None else hold + 10.0
        args: list[str | int] = [
            token,
            max(1, round(lease * 1000)),
            self.max_concurrency,
            self._interval_ms,
            int(self._probe_first),
            self._ttl_ms,
        ]
        pause = self._paused.get(key, -math.inf) - loop.time()
        if pause > 0:  # a slow-down this process asked for; Redis has it too, or will
            if deadline is not None and deadline - loop.time() < pause:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return None
            await asyncio.sleep(pause)
        kept = self._relay.take(key)
        # When requests of this process already wait for a slot of the account, queue up
        # behind them: a release anywhere wakes the one of them that watches Redis.
        blocked = kept is None and self._relay.watched(key)
        while True:
            if blocked:
                wait = self._poll_interval
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        return None
                kept = await self._relay.wait(key, self._watch(keys[2], wait), deadline)
            answer = await self._step(keys, args + self._handed(kept), key, kept)
            runs, kept = (0 if kept is None else kept.runs + 1), None
            kind = int(answer[0])
            if kind == 0:
                if runs:
                    self._runs[token] = runs
                return BudgetTicket(base_url, login_name, probe=bool(answer[1]), token=token)
            if kind == 2:
                rejected_at, until, now = (int(value) for value in answer[1:4])
                since = datetime.fromtimestamp(rejected_at / 1000, UTC)
                left = (until - now) / 1000
                raise login_locked(base_url, login_name, since, left, self.login_cooldown)
            # Every slot is taken or the login is being probed (-1), or a start is due later.
            blocked = int(answer[1]) < 0
            if not blocked:
                wait = int(answer[1]) / 1000
                if deadline is not None and deadline - loop.time() < wait:
                    await asyncio.sleep(max(0.0, deadline - loop.time()))
                    return None
                await asyncio.sleep(wait)

    @staticmethod
    def _handed(kept: _Kept | None) -> list[str | int]:
        return ["", ""] if kept is None else [kept.token, kept.verdict.value]

    async def _step(
        self,
        keys: tuple[str, str, str],
        args: list[str | int],
        key: tuple[str, str],
        kept: _Kept | None,
    ) -> list[Any]:
        """One acquire script; a slot handed over goes back if the step may not have run."""
        try:
            answer: list[Any] = await self._call(self._acquire(keys=keys, args=args))
        except BaseException:
            if kept is not None:
                self._send_back(BudgetTicket(*key, token=kept.token), kept.verdict)
            raise
        return answer

    async def release(self, ticket: BudgetTicket, verdict: LoginVerdict) -> None:
        """Give the slot back, with what the answer said about the login.

        An ordinary answer, while another request of this process for the account is under
        way, returns at once: the slot stays with this process for ``hand_over`` seconds, for
        its next request of the account to take over, and goes back to Redis after that,
        without the caller waiting.  The last request under way gives every slot kept back,
        and the probe's answer and a -16 go back, before this returns.  A release that fails
        is logged, not raised: the lease gives the slot back in time.  Cancelling the caller
        does not stop it.

        Args:
            ticket: What ``acquire`` returned.
            verdict: What the answer said about the login.
        """
        key = (ticket.base_url, ticket.login_name)
        self._local[key].release()
        self._busy[key] -= 1
        runs = self._runs.pop(ticket.token or "", 0)
        if ticket.probe or verdict is LoginVerdict.REJECTED:
            await asyncio.shield(self._send_back(ticket, verdict))
        elif self._busy[key] <= 0:
            # No other request of this process wants a slot of the account now: give this one
            # and those kept back, and wait for Redis, so that a process that ends next (an
            # event loop closed without aclose) holds nothing there until its leases expire.
            del self._busy[key]
            tasks = [
                self._send_back(BudgetTicket(*key, token=kept.token), kept.verdict)
                for _, kept in self._relay.drain(key)
            ]
            tasks.append(self._send_back(ticket, verdict))
            await asyncio.shield(asyncio.gather(*tasks))
        elif runs < _MOST_HAND_OVERS:
            self._relay.pass_on(key, _Kept(ticket.token or "", verdict, runs))
        else:
            self._send_back(ticket, verdict)

    def _give_kept_back(self, key: tuple[str, str], kept: _Kept) -> None:
        self._send_back(BudgetTicket(*key, token=kept.token), kept.verdict)

    def _watch(self, wake: str, wait: float) -> Callable[[], Awaitable[object]]:
        # BLPOP takes whole milliseconds from Redis 6 on; a release wakes one waiter.
        return lambda: self._call(self._redis.blpop([wake], timeout=wait), extra=wait)

    def _send_back(self, ticket: BudgetTicket, verdict: LoginVerdict) -> asyncio.Task[None]:
        """Give a slot back to Redis in a task of its own, which ``aclose`` waits for."""
        task = asyncio.ensure_future(self._give_back(ticket, verdict))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    async def _give_back(self, ticket: BudgetTicket, verdict: LoginVerdict) -> None:
        keys = self._keys(ticket.base_url, ticket.login_name)
        args: list[str | int] = [
            ticket.token or "",
            verdict.value,
            round(self.login_cooldown * 1000),
            self.max_concurrency,
            self._ttl_ms,
        ]
        try:
            await self._call(self._release(keys=keys, args=args))
        except BudgetUnavailableError as exc:
            _LOGGER.warning("a slot of the account budget goes back with its lease: %s", exc)

    async def slow_down(self, base_url: str, login_name: str, seconds: float) -> None:
        """Hold back every request for the account, in every process, for ``seconds``.

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            seconds: How long from now; a shorter slow-down never shortens a longer one.

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        # This process holds back at once, the others when Redis has it: a request of this
        # process must not take a slot over in the meantime.
        key, until = (base_url, login_name), asyncio.get_running_loop().time() + seconds
        self._paused[key] = max(self._paused.get(key, -math.inf), until)
        state = self._keys(base_url, login_name)[1]
        args = [max(0, math.ceil(seconds * 1000)), self._ttl_ms]
        await self._call(self._slow_down(keys=[state], args=args))

    async def reset_login(self, base_url: str, login_name: str) -> None:
        """Lift the login guard of an account now, in every process: one request probes next.

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        _, state, wake = self._keys(base_url, login_name)
        await self._call(self._reset_login(keys=[state, wake], args=[self.max_concurrency]))

    async def aclose(self) -> None:
        """Give back the slots kept, wait for the releases, close a client made from a URL."""
        for key, kept in self._relay.drain():
            self._give_kept_back(key, kept)
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)
        if self._owns_client:
            await self._redis.aclose()
