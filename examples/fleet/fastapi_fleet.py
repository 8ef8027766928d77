"""A FastAPI app whose worker processes share one account budget on Redis.

Every worker of ``uvicorn --workers 4`` (or gunicorn, or several replicas) builds its own client
in the lifespan, all on the same ``RedisBudget``: together they keep at most ``max_concurrency``
requests in flight on the account, all of them slow down after a 429 or -42, and after a rejected
password none of them sends it again for ``login_cooldown`` seconds (they answer 503 at once)::

    export SECTIGO_LOGIN_NAME=... SECTIGO_LOGIN_PASSWORD=...
    export SMIME_COLLECT_REDIS_URL=redis://127.0.0.1:6379/0
    uvicorn --app-dir examples/fleet fastapi_fleet:app --workers 4
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request

from smime_collect import AuthenticationError, BudgetUnavailableError, CollectClient, CollectError
from smime_collect.redis import RedisBudget


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One budget and one client per worker process, for the app's lifetime."""
    budget = RedisBudget(os.environ["SMIME_COLLECT_REDIS_URL"], max_concurrency=4)
    async with CollectClient.from_env(budget=budget) as client:
        app.state.client = client
        yield
    await budget.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/orders/{order_number}")
async def order_status(order_number: int, request: Request) -> dict[str, object]:
    """The order's status, asked once (the budget decides when the request may go)."""
    client: CollectClient = request.app.state.client
    try:
        result = await client.collect(order_number)
    except (AuthenticationError, BudgetUnavailableError) as exc:
        raise HTTPException(503, detail=str(exc)) from None
    except CollectError as exc:
        raise HTTPException(502, detail=str(exc)) from None
    return {"order": order_number, "status": result.status.name, "pid": os.getpid()}
