"""Malformed multipart bodies on every upload route are the caller's mistake: a 400 in
OpenAI's shape, nothing sent upstream, no traceback in the gateway's log."""

import httpx
import pytest

from tests.support.standard import ALICE, SECRETS

UPLOADS_CONFIG = """
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
"""
ROUTES = ["/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits", "/v1/files"]
GOOD_HEAD = b'--real\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
BODIES = {
    # The boundary in the header never appears in the body.
    "wrong-boundary": ("multipart/form-data; boundary=expected", GOOD_HEAD + b"--real--\r\n"),
    "garbage": ("multipart/form-data; boundary=b", b"\x00\xff not a form at all \r\n\r\n--" * 50),
    "bad-part-header": (
        "multipart/form-data; boundary=b",
        b"--b\r\nno colon in this header line\r\n\r\nx\r\n--b--\r\n",
    ),
    "truncated": ("multipart/form-data; boundary=real", GOOD_HEAD + b"--real\r\nContent-Disposition: form-da"),
    "no-part-headers": ("multipart/form-data; boundary=b", b"--b\r\n\r\nx\r\n--b--\r\n"),
}


@pytest.fixture(scope="module")
def uploads_gateway(sim, start_gateway_session):
    return start_gateway_session(UPLOADS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_malformed_multipart_is_a_400_and_nothing_goes_upstream(uploads_gateway, sim, route, kind, chunked) -> None:
    content_type, body = BODIES[kind]
    content = iter([body]) if chunked else body
    response = httpx.post(
        f"{uploads_gateway.url}{route}",
        content=content,
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert sim.requests == []
    assert "Traceback" not in uploads_gateway.logs()
