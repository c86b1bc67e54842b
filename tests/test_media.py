"""Images and audio: JSON and multipart uploads routed by their model, bytes streamed back."""

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

MEDIA_CONFIG = STANDARD_CONFIG.replace(
    """          text-embedding-3-small:
            deploymentName: embed-dep
""",
    """          text-embedding-3-small:
            deploymentName: embed-dep
          dall-e-3:
            deploymentName: dalle3-dep
          whisper:
            deploymentName: whisper-dep
          tts:
            deploymentName: tts-dep
""",
).replace("  maxBodyBytes: 65536", "  maxBodyBytes: 8388608")
AUDIO = bytes(range(256)) * 12_288  # 3 MiB, every byte value, CR/LF included


@pytest.fixture(scope="module")
def media_gateway(sim, start_gateway_session):
    return start_gateway_session(MEDIA_CONFIG, {**SECRETS, "SIM_URL": sim.url})


@pytest.fixture
def client(media_gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{media_gateway.url}/v1", api_key=ALICE, max_retries=0)


def post_form(gateway, path: str, data: dict[str, Any], files: dict[str, Any] | None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}", data=data, files=files, headers={"Authorization": f"Bearer {ALICE}", **headers}
    )


def test_image_generation_and_edit(client, sim) -> None:
    generated = client.images.generate(model="dall-e-3", prompt="a lighthouse", n=1)
    assert generated.data[0].url or generated.data[0].b64_json
    assert sim.requests[-1].path == "/openai/deployments/dalle3-dep/images/generations"
    edited = client.images.edit(model="dall-e-3", image=("in.png", b"\x89PNG fake"), prompt="add a boat")
    assert edited.data
    upload = sim.requests[-1]
    assert upload.path == "/openai/deployments/dalle3-dep/images/edits"
    assert upload.upload_bytes == len(b"\x89PNG fake") and upload.form["prompt"] == "add a boat"


def test_transcription_upload_arrives_intact(client, sim) -> None:
    result = client.audio.transcriptions.create(model="whisper", file=("talk.wav", AUDIO))
    assert str(len(AUDIO)) in result.text
    upload = sim.requests[-1]
    assert upload.path == "/openai/deployments/whisper-dep/audio/transcriptions"
    assert upload.upload_bytes == len(AUDIO) and upload.upload_sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert upload.headers["api-key"] == SECRETS["EASTUS_KEY"] and "authorization" not in upload.headers
    text = client.audio.translations.create(model="whisper", file=("talk.wav", AUDIO[:1000]), response_format="text")
    assert "1000" in text
    assert sim.requests[-1].path.endswith("/audio/translations")


def test_a_transcription_upload_its_upstream_reads_late_arrives_intact(media_gateway, sim) -> None:
    """While the upstream leaves the file unread, what the client sends backs up in the gateway: nothing but the
    upload may take it from there (the disconnect watch, if it ran, would swallow pieces of the file)."""
    audio = AUDIO * 2 + AUDIO[: 1 << 20]  # 7 MiB: more than the sockets between gateway and upstream hold
    response = post_form(
        media_gateway, "/v1/audio/transcriptions", {"model": "whisper"}, {"file": ("late.wav", audio)},
        **{"x-sim-read-delay-ms": "1000"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    upload = sim.requests[-1]
    assert upload.upload_bytes == len(audio) and upload.upload_sha256 == hashlib.sha256(audio).hexdigest()


def test_speech_streams_audio_bytes_with_the_upstream_content_type(client, media_gateway, sim) -> None:
    speech = client.audio.speech.create(model="tts", voice="alloy", input="Hello")
    assert len(speech.content) == 65536
    raw = httpx.post(
        f"{media_gateway.url}/v1/audio/speech",
        json={"model": "tts", "voice": "alloy", "input": "Hi"},
        headers={"Authorization": f"Bearer {ALICE}", "x-sim-audio-bytes": "1000"},
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "audio/mpeg" and len(raw.content) == 1000
    assert sim.requests[-1].path == "/openai/deployments/tts-dep/audio/speech"


@pytest.mark.parametrize(
    "data, files, status, code",
    [
        ({"model": "whisper"}, {"other": ("x.wav", b"123")}, 400, "missing_file"),
        ({}, {"file": ("x.wav", b"123")}, 400, "missing_model"),
        ({"model": "no-such-model"}, {"file": ("x.wav", b"123")}, 404, "model_not_found"),
    ],
)
def test_bad_uploads_are_refused_before_anything_goes_upstream(media_gateway, sim, data, files, status, code) -> None:
    response = post_form(media_gateway, "/v1/audio/transcriptions", data, files)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert sim.requests == []


def test_wrong_content_type_and_oversized_upload(media_gateway, sim) -> None:
    as_json = httpx.post(
        f"{media_gateway.url}/v1/audio/transcriptions",
        json={"model": "whisper"},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert as_json.status_code == 415 and as_json.json()["error"]["code"] == "unsupported_media_type"
    too_big = post_form(
        media_gateway, "/v1/audio/transcriptions", {"model": "whisper"}, {"file": ("x.wav", b"0" * 9_000_000)}
    )
    assert too_big.status_code == 413
    assert sim.requests == []


def model_after_file(boundary: str, audio: bytes) -> bytes:
    """A transcription form whose `model` field comes after the file."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
        + audio
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'.encode()
        + f"--{boundary}--\r\n".encode()
    )


def test_upload_of_unknown_length_is_read_whole_then_sent(media_gateway, sim) -> None:
    boundary = "b0und4ry"
    body = model_after_file(boundary, AUDIO[:50_000])

    def chunked() -> Iterator[bytes]:  # no Content-Length: the gateway must not stream it half-checked
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    response = httpx.post(
        f"{media_gateway.url}/v1/audio/transcriptions",
        content=chunked(),
        headers={"Authorization": f"Bearer {ALICE}", "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200, response.text
    assert sim.requests[-1].upload_bytes == 50_000
    assert sim.requests[-1].headers["content-length"] == str(len(body))


def test_upload_with_its_model_after_the_file_is_routed_by_that_model(media_gateway, sim) -> None:
    # A known length lets the rest stream once the required parts are in; the model comes last here,
    # so the whole file passes the scanner first (in many chunks) before anything goes upstream.
    boundary = "b0und4ry"
    body = model_after_file(boundary, AUDIO[:500_000])

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    response = httpx.post(
        f"{media_gateway.url}/v1/audio/transcriptions",
        content=pieces(),
        headers={
            "Authorization": f"Bearer {ALICE}",
            "content-type": f"multipart/form-data; boundary={boundary}",
            "content-length": str(len(body)),
        },
    )
    assert response.status_code == 200, response.text
    assert sim.requests[-1].path == "/openai/deployments/whisper-dep/audio/transcriptions"
    assert sim.requests[-1].upload_bytes == 500_000
    assert sim.requests[-1].headers["content-length"] == str(len(body))  # streamed with the client's length


def test_librechat_dalle_environment_configures_an_image_model(sim, start_gateway) -> None:
    config = """
endpoints:
  azureOpenAI:
    groups:
      - group: chat
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models: {gpt-4o: {deploymentName: gpt-4o-dep}}
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
"""
    env = {
        **SECRETS,
        "SIM_URL": sim.url,
        "DALLE3_AZURE_API_VERSION": "2024-02-01",
        "DALLE3_BASEURL": f"{sim.url}/openai/deployments/dalle3-dep/",
        "DALLE_API_KEY": SECRETS["EASTUS_KEY"],
    }
    gateway = start_gateway(config, env)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    assert "dall-e-3" in [m.id for m in client.models.list()]
    assert client.images.generate(model="dall-e-3", prompt="a fjord").data
    assert sim.requests[-1].path == "/openai/deployments/dalle3-dep/images/generations"
    assert sim.requests[-1].raw_query == "api-version=2024-02-01"
