"""The I/O layer: ``CollectClient`` and everything that talks HTTP.

- ``_client``: ``CollectClient``, its pacing, retry and polling loops;
- ``_config``: option checks (a bad option is an InvalidRequestError before anything is sent);
- ``_exchange``: one POST and the capped read of its answer;
- ``_failures``: httpx exceptions and error statuses translated at one boundary;
- ``_batch``: the worker pool behind ``collect_many``;
- ``_transports`` and ``_aiohttp``: the transports a client runs on when it owns its connection.

This is the only package of the library core that imports httpx or asyncio.
"""

from ._client import DEFAULT_URL, CollectClient

__all__ = ["DEFAULT_URL", "CollectClient"]
