"""A web page on an allowed origin calls the gateway from the browser (gateway.cors): its preflight is answered
before any key is checked, every answer says which origin may read it and which headers; other origins get an
OpenAI-shaped 400 for their preflight and no CORS header on anything; without gateway.cors nothing changes."""

from __future__ import annotations

import httpx

from tests.support.gateways import StartGateway
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

PAGE = "https://chat.example.com"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}


def with_cors(origins: str) -> str:
    assert "\ngateway:\n" in STANDARD_CONFIG
    return STANDARD_CONFIG.replace("\ngateway:\n", f"\ngateway:\n  cors: {{allowOrigins: {origins}, maxAge: 300}}\n")


def test_a_page_on_an_allowed_origin_may_call_the_gateway(sim, start_gateway: StartGateway) -> None:
    gateway = start_gateway(with_cors(f'["{PAGE}"]'), {**SECRETS, "SIM_URL": sim.url})
    url = f"{gateway.url}/v1/chat/completions"
    preflight = httpx.options(url, headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PAGE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == PREFLIGHT["Access-Control-Request-Headers"]
    assert preflight.headers["access-control-max-age"] == "300"
    assert "access-control-allow-credentials" not in preflight.headers
    assert preflight.headers["vary"] == "Origin"  # a cache must not hand this answer to another origin's page
    assert len(sim.requests) == 0  # answered by the gateway itself

    answer = httpx.post(url, json=CHAT, headers={"Origin": PAGE, "Authorization": f"Bearer {ALICE}"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert "x-request-id" in answer.headers["access-control-expose-headers"]
    assert "x-gateway-cost-remaining" in answer.headers["access-control-expose-headers"]
    assert answer.headers["vary"] == "Origin"
    # Added to the answer's own headers, none of which goes.
    assert answer.headers["content-type"] == "application/json" and answer.headers["x-request-id"]
    assert answer.json()["object"] == "chat.completion"
    refused = httpx.post(url, json=CHAT, headers={"Origin": PAGE})  # no key: the page still reads the error
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == PAGE

    elsewhere = httpx.options(url, headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["code"] == "cors_origin_not_allowed"
    assert elsewhere.json()["error"]["message"] == "This origin may not call the gateway from a browser (gateway.cors)."
    assert "access-control-allow-origin" not in elsewhere.headers
    other = httpx.post(url, json=CHAT, headers={"Origin": "https://evil.example", "Authorization": f"Bearer {ALICE}"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


def test_any_origin_and_no_cors_at_all(sim, start_gateway: StartGateway) -> None:
    anyone = start_gateway(with_cors('["*"]'), {**SECRETS, "SIM_URL": sim.url})
    preflight = httpx.options(f"{anyone.url}/v1/models", headers={**PREFLIGHT, "Origin": "https://x.example"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    answer = httpx.get(
        f"{anyone.url}/v1/models", headers={"Origin": "https://x.example", "Authorization": f"Bearer {ALICE}"}
    )
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"

    plain = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url})
    unanswered = httpx.options(f"{plain.url}/v1/chat/completions", headers=PREFLIGHT)
    assert unanswered.status_code == 404 and "access-control-allow-origin" not in unanswered.headers
    assert unanswered.json()["error"]["code"] == "unknown_url"


def test_an_origin_must_look_like_one(sim, start_gateway: StartGateway) -> None:
    from tests.support.config_text import problems

    found = problems(with_cors('["chat.example.com/app"]'))
    assert any("gateway.cors.allowOrigins" in problem and "scheme://host[:port]" in problem for problem in found)


def test_only_a_browsers_preflight_is_answered_as_one(sim, start_gateway: StartGateway) -> None:
    """A preflight is an OPTIONS with both an Origin and an Access-Control-Request-Method; a request with only
    some of them is served as what it is."""
    gateway = start_gateway(with_cors(f'["{PAGE}"]'), {**SECRETS, "SIM_URL": sim.url})
    url = f"{gateway.url}/v1/chat/completions"
    stray = {"Access-Control-Request-Method": "POST", "Authorization": f"Bearer {ALICE}"}
    call = httpx.post(url, json=CHAT, headers=stray)
    assert call.status_code == 200 and call.json()["object"] == "chat.completion"
    for partial in ({"Origin": PAGE}, {"Access-Control-Request-Method": "POST"}):
        unanswered = httpx.options(url, headers=partial)
        assert unanswered.status_code == 404 and unanswered.json()["error"]["code"] == "unknown_url", partial
        assert "access-control-allow-methods" not in unanswered.headers
    assert len(sim.requests) == 1
