"""The I/O layer: ``CollectClient`` and everything that talks HTTP.

- ``_client``: ``CollectClient``: its options, its lifecycle, an ``Order`` built per call;
- ``_options``: the constructor's options checked into one frozen value, and the budget picked;
- ``_collector``: one order's two short loops (the attempts of one poll, the polls of one order)
  around ``_polling``'s decisions, each attempt through the account budget;
- ``_order``: what the loops know about one order (deadline, last status, last failure);
- ``_budget``: the account budget (``LocalBudget``, the login guard) every request waits for,
  on ``_pacing``'s slots, start rate and 429/-42 slow-down;
- ``_config``: the checks of single options (a bad one is an InvalidRequestError, nothing sent);
- ``_exchange``: one POST and the capped read of its answer, on one transport;
- ``_failures``: httpx exceptions and error statuses translated at one boundary, and which
  errors stop a whole batch (``stops_batch``);
- ``_batch``: the workers behind ``collect_many``;
- ``_transports`` and ``_aiohttp``: the transports a client runs on when it owns its connection.

This is the only package of the library core that imports httpx or asyncio.
"""

from ._budget import AccountBudget, BudgetTicket, LocalBudget, LoginVerdict
from ._client import DEFAULT_URL, CollectClient
from ._failures import stops_batch

__all__ = [
    "DEFAULT_URL",
    "AccountBudget",
    "BudgetTicket",
    "CollectClient",
    "LocalBudget",
    "LoginVerdict",
    "stops_batch",
]
