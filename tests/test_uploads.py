"""The multipart scanner finds routing fields and file parts across arbitrary chunk splits."""

import pytest

from core.errors import GatewayError
from core.uploads import MAX_BOUNDARY, FormScanner, Upload

BOUNDARY = b"----b0und4ry"


def form(*parts: tuple[str, bytes, str | None]) -> bytes:
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if filename:
            body += b"Content-Type: audio/wav\r\n"
        body += b"\r\n" + value + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 100_000])
def test_fields_and_file_parts_whatever_the_chunking(chunk_size) -> None:
    audio = bytes(range(256)) * 400  # binary, with CR/LF bytes inside
    body = form(("model", b"whisper-1", None), ("file", audio, "a.wav"), ("language", b"en", None))
    scanner = FormScanner(BOUNDARY)
    for i in range(0, len(body), chunk_size):
        scanner.feed(body[i : i + chunk_size])
    assert scanner.fields == {"model": "whisper-1", "language": "en"}
    assert scanner.file_parts == ["file"]
    assert scanner.finished


def test_file_part_is_noted_when_its_headers_end_before_its_data() -> None:
    body = form(("model", b"whisper-1", None), ("file", b"x" * 10_000, "a.wav"))
    scanner = FormScanner(BOUNDARY)
    head = body[: body.index(b"xxxx")]  # up to the start of the file's bytes
    scanner.feed(head)
    assert scanner.fields == {"model": "whisper-1"} and scanner.file_parts == ["file"]
    assert not scanner.finished


def test_a_part_name_or_value_that_is_not_utf8_or_absent_is_read_not_refused() -> None:
    # Read like any other (then found missing or unknown by the gateway), not an exception that becomes a 500.
    body = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="mod\xffel"\r\n\r\nwhisper\r\n'
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-\xfftune\r\n'
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; filename="a.wav"\r\n\r\nRIFF\r\n'
        b"--" + BOUNDARY + b"--\r\n"
    )
    scanner = FormScanner(BOUNDARY)
    scanner.feed(body)
    assert scanner.fields == {"mod\ufffdel": "whisper", "purpose": "fine-\ufffdtune"}
    assert scanner.file_parts == [""]
    assert scanner.finished


def refusal(scanner: FormScanner, body: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        scanner.feed(body)
    return caught.value


def test_a_boundary_of_up_to_70_characters_is_taken_and_a_longer_one_refused() -> None:
    longest = b"b" * MAX_BOUNDARY
    assert MAX_BOUNDARY == 70
    FormScanner(longest).feed(b"--" + longest + b"--\r\n")
    with pytest.raises(GatewayError) as caught:
        FormScanner(longest + b"b")
    assert (caught.value.status, caught.value.code) == (400, "invalid_multipart")
    assert caught.value.message == (
        "Could not parse the multipart form: its boundary is longer than the 70 characters RFC 2046 allows."
    )


def test_bytes_that_are_not_multipart_are_a_400() -> None:
    error = refusal(FormScanner(BOUNDARY), b"garbage here\r\n\r\n")
    assert (error.status, error.code) == (400, "invalid_multipart")
    assert error.message == "Could not parse the multipart form: the body is not valid multipart/form-data."


def test_a_routing_field_sent_twice_is_refused_naming_it_and_any_other_field_keeps_its_last_value() -> None:
    error = refusal(FormScanner(BOUNDARY), form(("model", b"a", None), ("model", b"b", None)))
    assert (error.status, error.code, error.param) == (400, "duplicate_field", "model")
    assert error.message == "The 'model' form field appears more than once; send it once."
    scanner = FormScanner(BOUNDARY, frozenset({"model", "purpose"}))
    assert refusal(scanner, form(("purpose", b"a", None), ("purpose", b"b", None))).param == "purpose"
    scanner = FormScanner(BOUNDARY)
    scanner.feed(form(("purpose", b"a", None), ("purpose", b"b", None)))
    assert scanner.fields == {"purpose": "b"}


def upload(body: bytes, *, length: int | None = -1) -> Upload:
    scanner = FormScanner(BOUNDARY)
    scanner.feed(body)
    content_type = "multipart/form-data; boundary=" + BOUNDARY.decode()
    return Upload(content_type, len(body) if length == -1 else length, scanner.fields, scanner, head=[body])


def test_naming_the_model_replaces_the_clients_model_part_with_a_plain_one_and_keeps_the_length_right() -> None:
    body = form(("file", b"RIFF", "a.wav"), ("model", b"whisper-1", None))
    given = upload(body.replace(b'name="model"\r\n', b'name="model"\r\nContent-Type: text/plain\r\n'))
    given.name_model("whisper-dep")
    assert given.head == [form(("file", b"RIFF", "a.wav"), ("model", b"whisper-dep", None))]
    assert given.length == len(given.head[0])
    assert given.headers() == [
        ("content-type", "multipart/form-data; boundary=" + BOUNDARY.decode()),
        ("content-length", str(given.length)),
    ]


def test_naming_the_model_of_a_form_without_one_adds_it_first_and_a_file_named_model_is_no_model() -> None:
    given = upload(form(("model", b"RIFF", "model.wav"), ("language", b"en", None)), length=None)
    given.name_model("whisper-dep")
    assert given.head == [
        form(("model", b"whisper-dep", None), ("model", b"RIFF", "model.wav"), ("language", b"en", None))
    ]
    assert given.length is None
    assert given.headers() == [("content-type", "multipart/form-data; boundary=" + BOUNDARY.decode())]


def test_naming_the_model_reads_the_head_as_it_came_in_pieces_and_the_first_part_too() -> None:
    body = form(("model", b"whisper-1", None), ("file", b"RIFF", "a.wav"))
    body = body.replace(b'name="model"', b'name="model"; note="a:b"')  # a colon in a header's value
    given = upload(body)
    given.head = [body[:10], body[10:50], body[50:]]
    given.name_model("whisper-dep")
    assert given.head == [form(("model", b"whisper-dep", None), ("file", b"RIFF", "a.wav"))]
    assert given.length == len(given.head[0])


def test_a_parts_value_is_never_read_as_its_headers() -> None:
    """A part without a Content-Disposition whose value looks like a model part's headers is not the model."""
    odd = b"--" + BOUNDARY + b'\r\nX-Note: 1\r\n\r\nContent-Disposition: form-data; name="model"\r\n\r\nx\r\n'
    body = odd + form(("file", b"RIFF", "a.wav"))
    given = upload(body)
    given.name_model("whisper-dep")
    named = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-dep\r\n'
    assert given.head == [named + body]
