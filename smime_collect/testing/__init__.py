"""A CollectSMIME simulator, to test code that collects certificates without Sectigo.

Example::

    from smime_collect.testing import Simulator, OrderState, Fault

    sim = Simulator(seed=1)
    sim.add_account("api-user", "s3cret")
    sim.add_order(1001)                                  # issued: collect it at once
    sim.add_order(1002, ready_after_polls=3)             # status 0 three times, then issued
    sim.add_order(1003, state=OrderState.REVOKED)        # -21
    sim.inject(Fault.HTTP_503, order_number=1001, times=2)
    async with sim.http_client() as http:                # in-process, no socket
        response = await http.post(sim.url, data={...})

On a real loopback socket with TLS: ``async with serve(sim) as server: server.url``.
"""

from __future__ import annotations

from ._chaos import Chaos, Fault, ScriptedFault, Stats
from ._endpoint import Reply
from ._pki import IssuedChain, TestCA
from ._scenario import Account, ManualClock, Order, OrderState, Quirks
from ._server import RunningServer, serve
from ._simulator import Simulator
from ._transport import SimulatorTransport

__all__ = [
    "Account",
    "Chaos",
    "Fault",
    "IssuedChain",
    "ManualClock",
    "Order",
    "OrderState",
    "Quirks",
    "Reply",
    "RunningServer",
    "ScriptedFault",
    "Simulator",
    "SimulatorTransport",
    "Stats",
    "TestCA",
    "serve",
]

# As in smime_collect itself: public classes say where users import them from.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
