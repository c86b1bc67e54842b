"""Entra ID to Azure OpenAI: tokens from an injected credential, cached and refreshed early."""

import asyncio
import gc
import logging
import threading
import time

import httpx
import pytest
from azure.core.credentials import AccessToken

from azure_sim import AzureSimulator
from core.errors import GatewayError
from core.identity import COGNITIVE_SERVICES_SCOPE, TokenProvider
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.standard import ALICE


class CountingCredential:
    """Hands out token-1, token-2, ... each valid for the given lifetimes in turn."""

    def __init__(self, lifetimes: list[float], delay: float = 0.0) -> None:
        self._lifetimes = lifetimes
        self._delay = delay
        self._lock = threading.Lock()
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        time.sleep(self._delay)  # a slow identity endpoint: concurrent callers must share one fetch
        with self._lock:
            self.scopes.append(scopes)
            number = len(self.scopes)
        lifetime = self._lifetimes[min(number, len(self._lifetimes)) - 1]
        return AccessToken(f"token-{number}", int(time.time() + lifetime))


def test_concurrent_callers_share_one_fetch_and_valid_tokens_are_reused() -> None:
    async def run() -> list[str]:
        provider = TokenProvider(CountingCredential([3600], delay=0.2))
        tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
        tokens.append(await provider.token())
        return tokens

    assert set(asyncio.run(run())) == {"token-1"}


def test_a_token_near_expiry_is_served_while_one_background_refresh_runs() -> None:
    async def run() -> tuple[list[str], CountingCredential]:
        credential = CountingCredential([100, 3600])  # the first expires inside the 300 s margin
        provider = TokenProvider(credential)
        first = await provider.token()
        during = await asyncio.gather(*(provider.token() for _ in range(5)))  # refresh starts, old token served
        await asyncio.sleep(0.05)
        return [first, *during, await provider.token()], credential

    tokens, credential = asyncio.run(run())
    assert tokens == ["token-1"] * 6 + ["token-2"]
    assert credential.scopes == [(COGNITIVE_SERVICES_SCOPE,)] * 2


def test_an_expired_token_makes_callers_wait_for_the_new_one() -> None:
    async def run() -> list[str]:
        provider = TokenProvider(CountingCredential([10, 3600]))  # below the 30 s minimum: unusable
        return [await provider.token(), await provider.token()]

    assert asyncio.run(run()) == ["token-1", "token-2"]


def test_a_hung_identity_endpoint_is_a_bounded_502_not_a_hung_request() -> None:
    async def run() -> tuple[GatewayError, float]:
        provider = TokenProvider(CountingCredential([3600], delay=1.0))
        provider.WAIT_SECONDS = 0.1
        started = time.monotonic()
        with pytest.raises(GatewayError) as refused:
            await provider.token()
        return refused.value, time.monotonic() - started

    error, waited = asyncio.run(run())
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert waited < 0.9  # gave up at its own limit, not when the credential answered


class FixedCredential:
    """Hands out t1, t2, ... expiring at the given moments in turn; fails when the moment is None."""

    def __init__(self, expiries: list[float | None]) -> None:
        self._expiries = expiries
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.calls += 1
        expires = self._expiries[min(self.calls, len(self._expiries)) - 1]
        if expires is None:
            raise RuntimeError("the identity endpoint said no")
        return AccessToken(f"t{self.calls}", int(expires))


NOW = 1_700_000_000


@pytest.mark.parametrize(("left", "second"), [(300, ["t1", "t2"]), (30, ["t2", "t2"])])
def test_the_margins_are_exclusive(left: int, second: list[str]) -> None:
    """A token with exactly REFRESH_MARGIN_SECONDS left is refreshed (still served meanwhile); one with exactly
    MIN_VALIDITY_SECONDS left is no longer served: callers wait for the new one."""

    async def run() -> list[str]:
        provider = TokenProvider(FixedCredential([NOW + left, NOW + 3600]), clock=lambda: NOW)
        assert await provider.token() == "t1"
        served = await provider.token()
        await asyncio.sleep(0.05)  # the background refresh, if one started, is done
        return [served, await provider.token()]

    assert asyncio.run(run()) == second


def test_a_credential_that_fails_is_a_502_and_a_logged_refresh_failure(caplog: pytest.LogCaptureFixture) -> None:
    """No token: the caller gets the gateway's 502 in OpenAI's shape, and the log says which scope failed. A
    background refresh that fails with nobody waiting is logged the same way, and only that way (asyncio must not
    report an exception nobody retrieved)."""

    async def run() -> GatewayError:
        provider = TokenProvider(FixedCredential([None]))
        with pytest.raises(GatewayError) as refused:
            await provider.token()
        background = TokenProvider(FixedCredential([NOW + 100, None]), clock=lambda: NOW)
        assert await background.token() == "t1"
        assert await background.token() == "t1"  # inside the margin: served while a refresh runs, and fails
        await asyncio.sleep(0.05)
        return refused.value

    with caplog.at_level(logging.ERROR):
        error = asyncio.run(run())
        gc.collect()
    assert (error.status, error.code, error.type) == (502, "upstream_auth_failed", "api_error")
    assert error.message == "The gateway could not get an Entra ID token for the upstream."
    failures = [r for r in caplog.records if r.name == "aoai_gateway"]
    assert [r.getMessage() for r in failures] == [f"Entra ID token refresh failed for {COGNITIVE_SERVICES_SCOPE}"] * 2
    assert all(r.exc_info for r in failures)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


ENTRA_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: east
        instanceName: east
        baseURL: "${SIM_URL}"
        deploymentName: gpt-4o-dep
        version: "2025-04-01-preview"
        assistants: true
        models: {gpt-4o: true}
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
  groups:
    east: {auth: entra}
"""


def test_entra_group_sends_the_managed_identity_token_and_refreshes_it() -> None:
    credential = CountingCredential([100, 3600])
    with AzureSimulator(name="entra") as upstream:
        env = {"CONFIG_YAML": ENTRA_CONFIG, "SIM_URL": upstream.url, "ALICE_KEY": ALICE}
        with InProcessGateway(env, credential=credential) as gateway:
            headers = {"Authorization": f"Bearer {ALICE}"}
            chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(2):
                assert httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers=headers).status_code == 200
            time.sleep(0.2)  # the background refresh started by the second request lands
            assert httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers=headers).status_code == 200
            assert (
                httpx.post(f"{gateway.url}/v1/assistants", json={"model": "gpt-4o"}, headers=headers).status_code == 200
            )
        sent = [r.headers.get("authorization") for r in upstream.requests]
        assert sent == ["Bearer token-1", "Bearer token-1", "Bearer token-2", "Bearer token-2"]
        assert all("api-key" not in r.headers for r in upstream.requests)
        assert ALICE not in str([r.headers for r in upstream.requests])
    assert credential.scopes == [(COGNITIVE_SERVICES_SCOPE,)] * 2


def test_a_restricted_keys_model_check_reads_the_assistant_with_the_token() -> None:
    restricted = "gw-key-restricted-9f8e7d6c"
    config = ENTRA_CONFIG.replace(
        "apiKeys: [", 'apiKeys: [{name: restricted, key: "${RESTRICTED}", models: [gpt-4o], resources: true}, '
    )
    with AzureSimulator(name="entra") as upstream:
        env = {"CONFIG_YAML": config, "SIM_URL": upstream.url, "ALICE_KEY": ALICE, "RESTRICTED": restricted}
        with InProcessGateway(env, credential=CountingCredential([3600])) as gateway:
            headers = {"Authorization": f"Bearer {restricted}"}
            assistant = httpx.post(f"{gateway.url}/v1/assistants", json={"model": "gpt-4o"}, headers=headers).json()
            thread = httpx.post(f"{gateway.url}/v1/threads", json={}, headers=headers).json()
            upstream.requests.clear()
            run = httpx.post(
                f"{gateway.url}/v1/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}, headers=headers
            )
            assert (run.status_code, run.json()["model"]) == (200, "gpt-4o")
        checked, ran = upstream.requests
        assert (checked.method, checked.path) == ("GET", f"/openai/assistants/{assistant['id']}")
        assert checked.headers["authorization"] == ran.headers["authorization"] == "Bearer token-1"
        # Azure's logs tie the check to the run: both carry the request's id.
        assert (
            checked.headers["x-ms-client-request-id"]
            == ran.headers["x-ms-client-request-id"]
            == run.headers["x-request-id"]
        )
