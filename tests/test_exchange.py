"""The Exchange (core/exchange.py) owns a call to its end: every kind of answer leaves nothing behind for the
garbage collector (a reference cycle per call made the collector a third of the gateway's cost under load),
and every answer carries its request id once."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway_process import gateway_environ
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import CHAT

AUTH = {"Authorization": f"Bearer {ALICE}"}
# What one call builds that could outlive it in a cycle: the gateway's own objects and the request it serves.
CALL_MODULES = ("core.", "starlette.requests")


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory) -> Iterator[InProcessGateway]:
    env = {**SECRETS, "SIM_URL": sim.url}
    with InProcessGateway(gateway_environ(STANDARD_CONFIG, env, tmp_path_factory.mktemp("exchange"))) as served:
        yield served


def calls_cycles(call: object) -> list[str]:
    """The call objects that `call` (run five times, the collector off) left in reference cycles."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            call()  # type: ignore[operator]
        gc.collect()
        kinds = {type(found) for found in gc.garbage}
        return sorted(
            f"{kind.__module__}.{kind.__name__}" for kind in kinds if kind.__module__.startswith(CALL_MODULES)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**CHAT, "stream": False}, id="json"),
        pytest.param({**CHAT, "stream": True}, id="stream"),
        pytest.param({"model": "no-such-model", "messages": []}, id="error"),
    ],
)
def test_a_call_leaves_no_reference_cycle_behind(gateway: InProcessGateway, body: dict[str, object]) -> None:
    def call() -> None:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10)
        assert response.status_code in (200, 404), response.text

    assert calls_cycles(call) == []


def test_every_answer_carries_its_request_id_once(gateway: InProcessGateway) -> None:
    for body in ({**CHAT, "stream": False}, {**CHAT, "stream": True}, {"model": "no-such-model"}):
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10)
        assert len(response.headers.get_list("x-request-id")) == 1, response.headers
