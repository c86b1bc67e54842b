"""Inputs that once gave 500s (issue 21), each over a real socket: the gateway answers them itself with a 400 in
OpenAI's shape, or forwards a request it built; nothing of the kind reaches Azure twice or unchecked."""

from __future__ import annotations

import httpx
import pytest

from azure_sim import AzureSimulator
from core.inbound import is_ascii_digits
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, SECRETS

INPUTS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          whisper: {deploymentName: whisper-dep}
          dall-e-2: {deploymentName: dalle3-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
    - {name: bob, key: "${BOB_KEY}", models: [whisper], resources: true}
  forwardHeaders: ["x-sim-*"]
"""
HEADERS = {"Authorization": f"Bearer {ALICE}"}
# Digits of other scripts, and numbers that are digits to str.isdigit() but not to int().
NON_ASCII_DIGITS = ("²", "٣", "\uff15", "1²", "߁", "\U0001d7d9")  # ..., fullwidth 5, double-struck 1


@pytest.fixture(scope="module")
def inputs_gateway(sim: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(INPUTS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    assert error["type"] == "invalid_request_error"
    return error


# -- 10: numbers in query strings and headers are ASCII digits


@pytest.mark.parametrize("digits", NON_ASCII_DIGITS)
def test_a_list_limit_of_non_ascii_digits_is_a_400(inputs_gateway: Gateway, sim: AzureSimulator, digits) -> None:
    for family in ("assistants", "vector_stores", "files", "batches"):
        response = httpx.get(f"{inputs_gateway.url}/v1/{family}", params={"limit": digits}, headers=HEADERS)
        error = assert_openai_error(response, 400, "invalid_limit")
        assert error["param"] == "limit"
    assert sim.requests == []
    assert "Traceback" not in inputs_gateway.logs()


def test_ascii_digits_are_what_http_calls_digits() -> None:
    assert is_ascii_digits("0123456789")
    assert not any(is_ascii_digits(value) for value in (*NON_ASCII_DIGITS, "", "-1", "1.0", " 1", "1_0"))
