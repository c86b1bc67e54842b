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
  maxBodyBytes: 65536
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


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body with boundary `b`: (name, filename or None, value) per part."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + b"--b--\r\n"


def post_multipart(gateway, route: str, body: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ALICE}", "Content-Type": "multipart/form-data; boundary=b"}
    return httpx.post(f"{gateway.url}{route}", content=body, headers=headers)


@pytest.mark.parametrize(
    "route, body, message, param, code",
    [
        (
            "/v1/audio/transcriptions",
            form(("model", None, b"whisper"), ("other", "a.wav", b"123")),
            "The 'file' file part is missing.",
            "file",
            "missing_file",
        ),
        (
            "/v1/images/edits",
            form(("model", None, b"dall-e-2"), ("prompt", None, b"a cat"), ("file", "a.png", b"123")),
            "The 'image' file part is missing.",
            "image",
            "missing_file",
        ),
        (
            "/v1/audio/translations",
            form(("file", "a.wav", b"123"), ("modle", None, b"whisper")),
            "The 'model' form field is missing.",
            "model",
            "missing_model",
        ),
        (
            "/v1/files",
            form(("file", "a.jsonl", b"{}"), ("model", None, b"gpt-4o")),
            "The 'purpose' form field is missing.",
            "purpose",
            "missing_field",
        ),
        (  # empty is missing, also when the body's length is known and the rest would stream upstream
            "/v1/files",
            form(("purpose", None, b""), ("file", "a.jsonl", b"{}")),
            "The 'purpose' form field is missing.",
            "purpose",
            "missing_field",
        ),
    ],
)
def test_a_missing_part_is_named_in_the_400(uploads_gateway, sim, route, body, message, param, code) -> None:
    response = post_multipart(uploads_gateway, route, body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
    assert sim.requests == []


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("wrong-boundary", "the body is not valid multipart/form-data"),
        ("garbage", "the body is not valid multipart/form-data"),
        ("bad-part-header", "the body is not valid multipart/form-data"),
        ("truncated", "the body ends before its closing boundary"),
    ],
)
def test_a_malformed_body_is_named_in_the_400(uploads_gateway, kind, reason) -> None:
    content_type, body = BODIES[kind]
    response = httpx.post(
        f"{uploads_gateway.url}/v1/audio/transcriptions",
        content=body,
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": content_type},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": f"Could not parse the multipart form: {reason}.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_multipart",
    }


def test_an_upload_whose_rest_streams_upstream_and_ends_before_its_form_does_is_a_400_naming_why(
    uploads_gateway,
) -> None:
    """Its model and file are known with its length, so the rest streams upstream; the form never closes."""
    body = GOOD_HEAD + b'--real\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    response = httpx.post(
        f"{uploads_gateway.url}/v1/audio/transcriptions",
        content=body,
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "multipart/form-data; boundary=real"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {
        "message": "Could not parse the multipart form: the body ends before its closing boundary.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_multipart",
    }


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/json; boundary=b"])
def test_a_body_that_is_not_a_multipart_form_with_a_boundary_is_a_415(uploads_gateway, sim, content_type) -> None:
    response = httpx.post(
        f"{uploads_gateway.url}/v1/audio/transcriptions",
        content=form(("model", None, b"whisper"), ("file", "a.wav", b"123")),
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert response.json()["error"] == {
        "message": "This endpoint takes multipart/form-data (a file upload).",
        "type": "invalid_request_error",
        "param": None,
        "code": "unsupported_media_type",
    }
    assert sim.requests == []


def upload_of_size(gateway, size: int, chunked: bool) -> tuple[httpx.Response, int]:
    """A transcription upload of exactly `size` bytes, with a Content-Length or chunked; and its file's size."""
    audio = b"A" * (size - len(form(("model", None, b"whisper"), ("file", "a.wav", b""))))
    body = form(("model", None, b"whisper"), ("file", "a.wav", audio))
    assert len(body) == size
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        content=iter([body[:1000], body[1000:]]) if chunked else body,
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "multipart/form-data; boundary=b"},
    )
    return response, len(audio)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_an_upload_of_max_body_bytes_is_taken(uploads_gateway, sim, chunked) -> None:
    response, audio_bytes = upload_of_size(uploads_gateway, 65536, chunked)
    assert response.status_code == 200, response.text
    assert sim.requests[-1].upload_bytes == audio_bytes


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_an_upload_one_byte_over_max_body_bytes_is_a_413(uploads_gateway, sim, chunked) -> None:
    response, _ = upload_of_size(uploads_gateway, 65537, chunked)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "message": "Request body exceeds the gateway's limit of 65536 bytes.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    assert sim.requests == []
