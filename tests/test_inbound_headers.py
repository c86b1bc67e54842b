"""Which client headers reach Azure: a short allow-list plus `gateway.forwardHeaders`, never a
caller's credentials; and how a caller's key is read from `Authorization`."""

from typing import Any

import httpx
import pytest

from azure_sim import AzureSimulator
from core.config import ConfigError
from core.config.load import load_config_text
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
FORWARDED = 'forwardHeaders: ["x-sim-*"]'
CONFIG = STANDARD_CONFIG.replace(FORWARDED, 'forwardHeaders: ["x-sim-*", "X-Team-Id", "x-trace-*"]')
assert CONFIG != STANDARD_CONFIG

# Headers that must not reach Azure, with values that appear nowhere else in a request.
NEVER_FORWARDED = {
    "X-Api-Key": "x-api-key-value",
    "Ocp-Apim-Subscription-Key": "apim-subscription-value",
    "X-My-Token": "my-token-value",
    "Cookie": "session=cookie-value",
    "Proxy-Authorization": "Basic cHJveHktdmFsdWU=",
    "X-Functions-Key": "functions-key-value",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Host": "forwarded-host.example",
    "X-Ms-Client-Principal": "client-principal-value",
    "X-Arr-Log-Id": "arr-log-id-value",
    "X-Site-Deployment-Id": "site-deployment-value",  # App Service's x-site-* front-end headers
    "X-Ms-Token-Aad-Id-Token": "aad-id-token-value",  # Easy Auth's x-ms-* tokens
    "Client-Ip": "203.0.113.10",
    "Disguised-Host": "disguised-host.example",
    "Max-Forwards": "271828182",
    "X-Gateway-Group": "eastus-hint-value",
    "OpenAI-Organization": "org-value",
    "OpenAI-Project": "proj-value",
    "X-Stainless-Lang": "stainless-lang-value",
    "Upgrade": "upgrade-value",
    "TE": "trailers",
    "X-Team": "team-value",  # not X-Team-Id, which the configuration names
    "X-Tracer": "tracer-value",  # `x-trace-*` matches X-Trace-..., not X-Tracer
}
# Forwarded unchanged: what clients need upstream, and what the configuration names.
ALLOWED = {
    "OpenAI-Beta": "assistants=v2",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "congo=t61rcWkgMzE",
    "Accept": "application/json",
    "User-Agent": "my-app/1.0",
    "X-TEAM-ID": "team-42",  # configured as X-Team-Id: names compare case-insensitively
    "X-Trace-Span": "span-7",  # configured as x-trace-*
    "x-sim-chunks": "2",  # configured as x-sim-*
}


@pytest.fixture(scope="module")
def headers_gateway(sim, start_gateway_session):
    return start_gateway_session(CONFIG, {**SECRETS, "SIM_URL": sim.url})


def send(gateway, sim: AzureSimulator, headers: dict[str, str], body: dict[str, Any] = CHAT) -> dict[str, str]:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return sim.requests[-1].headers


@pytest.mark.parametrize("name", NEVER_FORWARDED)
def test_header_never_goes_upstream(headers_gateway, sim, name) -> None:
    value = NEVER_FORWARDED[name]
    upstream = send(headers_gateway, sim, {"Authorization": f"Bearer {ALICE}", name: value})
    assert name.lower() not in upstream
    assert all(value not in sent for sent in upstream.values())


def test_headers_the_gateway_sets_itself_are_not_the_clients(headers_gateway, sim) -> None:
    upstream = send(
        headers_gateway,
        sim,
        {
            "Authorization": f"Bearer {ALICE}",
            "Accept-Encoding": "br",
            "X-Ms-Client-Request-Id": "client-chosen-id",
            "Connection": "keep-alive, x-hop",
            "X-Hop": "hop-value",
            "Expect": "100-continue",
        },
    )
    assert upstream["accept-encoding"] == "identity"  # the relay reads plain bytes
    assert upstream["x-ms-client-request-id"] != "client-chosen-id"
    assert "x-hop" not in upstream and "expect" not in upstream
    assert "authorization" not in upstream  # an api-key group: the gateway key stays here
    assert upstream["api-key"] == SECRETS["EASTUS_KEY"]


def test_a_call_with_only_a_key_goes_upstream_with_the_gateways_own_headers_only(headers_gateway, sim) -> None:
    with httpx.Client() as client:
        for default in ("user-agent", "accept", "accept-encoding"):  # httpx's own: a bare client sends none
            del client.headers[default]
        answer = client.post(
            f"{headers_gateway.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {ALICE}"}
        )
    assert answer.status_code == 200, answer.text
    sent = sim.requests[-1].header_list
    # aiohttp's own Accept: */*, and the gateway named as the user agent (not aiohttp's Python/3.x aiohttp/3.x)
    assert sorted(name for name, _ in sent) == [
        "accept", "accept-encoding", "api-key", "content-length", "content-type", "host", "user-agent",
        "x-ms-client-request-id",
    ]  # fmt: skip
    assert dict(sent)["content-type"] == "application/json"
    assert dict(sent)["user-agent"] == "aoai-gateway"


def test_allowed_and_configured_headers_arrive_unchanged(headers_gateway, sim) -> None:
    upstream = send(headers_gateway, sim, {"Authorization": f"Bearer {ALICE}", **ALLOWED})
    for name, value in ALLOWED.items():
        assert upstream.get(name.lower()) == value, name


def test_the_clients_user_agent_goes_upstream_alone(headers_gateway, sim) -> None:
    send(headers_gateway, sim, {"Authorization": f"Bearer {ALICE}", "User-Agent": "my-app/1.0"})
    agents = [value for name, value in sim.requests[-1].header_list if name == "user-agent"]
    assert agents == ["my-app/1.0"]


def test_group_additional_headers_are_still_added(headers_gateway, sim) -> None:
    upstream = send(headers_gateway, sim, {"Authorization": f"Bearer {ALICE}"}, {**CHAT, "model": "gpt-tuned"})
    assert upstream["x-custom-header"] == "from-config"


KEY_CARRIERS = ["X-Api-Key", "Ocp-Apim-Subscription-Key", "X-My-Token", "Cookie", "Authorization", "api-key"]


@pytest.mark.parametrize("model", ["gpt-4o", "mistral-large"])  # an api-key group and a serverless (Bearer) one
@pytest.mark.parametrize("carrier", KEY_CARRIERS)
def test_a_callers_gateway_key_never_reaches_azure(headers_gateway, sim, carrier, model) -> None:
    headers = {carrier: f"Bearer {ALICE}" if carrier == "Authorization" else ALICE}
    if carrier.lower() not in ("authorization", "api-key"):
        headers["api-key"] = ALICE
    send(headers_gateway, sim, headers, {**CHAT, "model": model})
    assert all(ALICE not in value for _, value in sim.requests[-1].header_list)


@pytest.mark.parametrize(
    "authorization", [f"Bearer\t{ALICE}", f"Bearer   {ALICE}", f"bearer {ALICE}", f"BEARER \t {ALICE}"]
)
def test_bearer_takes_any_whitespace_and_any_case(headers_gateway, sim, authorization) -> None:
    response = httpx.get(f"{headers_gateway.url}/v1/models", headers={"Authorization": authorization})
    assert response.status_code == 200, response.text


def test_bearer_without_a_token_is_refused(headers_gateway) -> None:
    for authorization in ("Bearer", f"Bearer{ALICE}", f"Basic {ALICE}"):
        response = httpx.get(f"{headers_gateway.url}/v1/models", headers={"Authorization": authorization})
        assert response.status_code == 401, authorization
        assert response.json()["error"]["code"] == "invalid_api_key"


def forward_headers_problems(names: str) -> list[str]:
    text = STANDARD_CONFIG.replace(FORWARDED, f"forwardHeaders: {names}")
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}, "test")
    return raised.value.problems


@pytest.mark.parametrize(
    "name", ["Authorization", "api-key", "Cookie", "Proxy-Authorization", "Connection", "transfer-encoding", "Host"]
)
def test_forward_headers_refuses_credentials_and_hop_by_hop_headers(name) -> None:
    (problem,) = forward_headers_problems(f'["x-sim-*", "{name}"]')
    assert problem.startswith("gateway.forwardHeaders[1]: ")
    assert f'"{name}" is never forwarded' in problem


@pytest.mark.parametrize("pattern", ["*", "a*", "x-*", "cook*"])
def test_forward_headers_refuses_wildcards_that_would_match_a_credential(pattern) -> None:
    (problem,) = forward_headers_problems(f'["{pattern}"]')
    assert problem.startswith("gateway.forwardHeaders[0]: ") and "would match" in problem


@pytest.mark.parametrize("name", ["", "x y", "x-*-y", "x:y"])
def test_forward_headers_refuses_what_is_not_a_header_name(name) -> None:
    (problem,) = forward_headers_problems(f'["{name}"]')
    assert problem.startswith("gateway.forwardHeaders[0]: ")


def test_the_headers_every_call_reads_are_found_in_one_pass_the_first_of_each_as_starlette_reads_them() -> None:
    from starlette.datastructures import Headers

    from core.inbound import read_head

    raw = [
        (b"host", b"gw"),
        (b"authorization", b"Bearer first"),
        (b"content-length", b"12"),
        (b"authorization", b"Bearer second"),
        (b"x-api-key", b"never read"),
        (b"api-key", b"caf\xe9"),
        (b"traceparent", b"00-abc"),
        (b"accept", b"text/event-stream"),
        (b"user-agent", b"my-app/1.0"),
        (b"accept", b"application/json"),
    ]
    found, forwarded = read_head(raw)
    assert found == {
        "authorization": "Bearer first",
        "content-length": "12",
        "api-key": "café",
        "traceparent": "00-abc",
    }
    starlette = Headers(raw=raw)
    assert all(starlette.get(name) == value for name, value in found.items())
    # In the same pass, the built-in few that go upstream: every one, in their order.
    assert forwarded == [
        ("traceparent", "00-abc"),
        ("accept", "text/event-stream"),
        ("user-agent", "my-app/1.0"),
        ("accept", "application/json"),
    ]
