"""Egress proxies: upstream traffic goes through a real proxy on 127.0.0.1, pooled."""

import httpx
import pytest

from tests.support.forward_proxies import HttpProxy, Socks5Proxy
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "through the proxy"}]}


def chat(gateway, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json={**CHAT, **extra}, headers={"Authorization": f"Bearer {ALICE}"}
    )


@pytest.mark.parametrize(
    "variable, password",
    [
        ("AZURE_OPENAI_HTTP_PROXY", "pr0xy-pass"),
        ("PROXY", "pr0xy-pass"),
        ("AZURE_OPENAI_HTTP_PROXY", "p@ss:w0rd/%"),  # percent-encoded in the URL, sent decoded
    ],
)
def test_http_proxy_with_basic_auth(sim, start_gateway, variable, password) -> None:
    with HttpProxy("gw", password) as proxy:
        gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url, variable: proxy.url})
        for _ in range(3):
            assert chat(gateway).json()["choices"][0]["message"]["content"] == "Echo: through the proxy"
        streamed = chat(gateway, stream=True)
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        assert [method for method, _ in proxy.requests] == ["POST"] * 4
        assert all(target.startswith(f"{sim.url}/openai/deployments/gpt-4o-dep/") for _, target in proxy.requests)
        assert proxy.connections == 1  # pooled: one keep-alive connection to the proxy
        assert proxy.auth_failures == 0
        assert len(sim.requests) == 4 and "proxy-authorization" not in sim.requests[0].headers
        assert password not in gateway.logs() and proxy.url.split("@")[0] not in gateway.logs()


def test_socks5_proxy(sim, start_gateway) -> None:
    with Socks5Proxy("gw", "s0cks") as proxy:
        gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url, "AZURE_OPENAI_SOCKS_PROXY": proxy.url})
        for _ in range(3):
            assert chat(gateway).status_code == 200
        port = int(sim.url.rsplit(":", 1)[1])
        assert proxy.tunnels == [("127.0.0.1", port)]  # one tunnel, reused: still pooled
        assert len(sim.requests) == 3


def test_wrong_proxy_credentials_surface_as_an_upstream_error(sim, start_gateway) -> None:
    with HttpProxy("gw", "right") as proxy:
        wrong = proxy.url.replace("right", "wrong")
        gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url, "AZURE_OPENAI_HTTP_PROXY": wrong})
        response = chat(gateway)
        assert response.status_code == 407
        assert set(response.json()["error"]) >= {"message", "type", "param", "code"}
        assert proxy.auth_failures == 1 and sim.requests == []
