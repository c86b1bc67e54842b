"""The multipart scanner finds routing fields and file parts across arbitrary chunk splits."""

import pytest

from core.uploads import FormScanner

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
