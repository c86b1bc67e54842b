"""Multipart uploads (audio, image edits, files) read only as far as routing needs.

The fields that choose the backend (`model`) and the part the upstream requires
(`file`) are found by parsing the stream as it arrives; the bytes read so far
are kept and the rest is streamed upstream unchanged, so a large upload is never
held twice in memory. A body of unknown length is read whole first (bounded by
the size limit), so bad input is refused before anything is sent upstream.

A field the gateway routes by (`model`, and the fields a route reads) may appear once: the gateway checks one
value, and the upstream might honour another. The rest of a streamed upload is still parsed as it goes, so a
second `model` after the file part ends the upload before the upstream has all of it, and the caller gets the 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import GatewayError, body_too_large
from core.guard import CallGuard
from core.inbound import is_ascii_digits

_MAX_FIELD_BYTES = 64 * 1024  # a form field (model, purpose...) is short; file parts are not kept
MAX_BOUNDARY = 70  # RFC 2046 5.1.1: a boundary is 1 to 70 characters
# Form fields that decide where an upload goes, whatever the route: Azure's v1 API takes the deployment from `model`.
ROUTING_FIELDS = frozenset({"model"})


class FormScanner:
    """Feeds multipart bytes to python-multipart, keeping small field values and noting file parts."""

    def __init__(self, boundary: bytes, unique: frozenset[str] = ROUTING_FIELDS) -> None:
        self.fields: dict[str, str] = {}
        self.boundary = boundary
        self._unique = unique  # field names that may appear once (feed refuses a second)
        self._repeated: str | None = None
        self.file_parts: list[str] = []  # names of parts that carry a filename, as they begin
        self.finished = False
        self._header_name = b""
        self._header_value = b""
        self._part_name: str | None = None
        self._part_is_file = False
        self._part_value = bytearray()
        if len(boundary) > MAX_BOUNDARY:  # python-multipart's own limit (256) would raise as it is built
            raise malformed_multipart(f"its boundary is longer than the {MAX_BOUNDARY} characters RFC 2046 allows")
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        """Raises a 400 GatewayError for bytes that are not multipart/form-data (as the constructor does for a
        boundary no form may have), and for a second value of a field that may have one."""
        try:
            self._parser.write(chunk)
        except FormParserError:  # every error python-multipart raises, not only its parse errors
            raise malformed_multipart("the body is not valid multipart/form-data") from None
        if self._repeated is not None:
            name = self._repeated
            raise GatewayError(
                400,
                f"The '{name}' form field appears more than once; send it once.",
                param=name,
                code="duplicate_field",
            )

    def _on_part_begin(self) -> None:
        self._part_name, self._part_is_file = None, False
        self._part_value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
            self._part_is_file = b"filename" in options
        self._header_name, self._header_value = b"", b""

    def _on_headers_finished(self) -> None:
        if self._part_is_file and self._part_name is not None:
            self.file_parts.append(self._part_name)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._part_is_file and len(self._part_value) <= _MAX_FIELD_BYTES:
            self._part_value += data[start:end]

    def _on_part_end(self) -> None:
        name = self._part_name
        if name is not None and not self._part_is_file:
            if name in self.fields and name in self._unique and self._repeated is None:
                self._repeated = name
            self.fields[name] = self._part_value.decode("utf-8", "replace")

    def _on_end(self) -> None:
        self.finished = True


@dataclass
class Upload:
    """A multipart request body: the part already read, and the rest still on the wire."""

    content_type: str
    length: int | None  # the client's Content-Length, sent on unchanged (but for what name_model changed)
    fields: dict[str, str]
    scanner: FormScanner  # reads the rest too, as it streams
    head: list[bytes] = field(default_factory=list)
    rest: AsyncIterator[bytes] | None = None
    refusal: GatewayError | None = None  # what ended the upload as it streamed: the caller's answer

    def name_model(self, deployment: str) -> None:
        """The form's `model` becomes `deployment` (Azure's v1 API reads the deployment there, not the path): the
        client's part replaced by a plain one (its own headers, a transfer encoding say, do not go with the new
        value), or one added first when it sent none. Every field part before the file part is whole in the head,
        and `model` appears there at most once (a later one is refused as the rest streams)."""
        old = b"".join(self.head)
        boundary = self.scanner.boundary
        value = deployment.encode()
        start = old.find(b"--" + boundary)
        delimiter = b"\r\n--" + boundary
        pieces = (b"\r\n" + old[start:]).split(delimiter)
        named = False
        for index in range(1, len(pieces) - 1):  # whole parts only: the last piece is still arriving
            piece = pieces[index]
            ends = piece.find(b"\r\n\r\n")
            if ends >= 0 and _is_model_part(piece[:ends]):
                pieces[index] = _MODEL_PART_HEAD + value
                named = True
        new = old[:start] + delimiter.join(pieces)[2:]
        if not named:
            new = old[:start] + b"--" + boundary + _MODEL_PART_HEAD + value + b"\r\n" + old[start:]
        self.head = [new]
        if self.length is not None:
            self.length += len(new) - len(old)

    def headers(self) -> list[tuple[str, str]]:
        """The body's own headers upstream: the client's multipart type (its boundary) and length."""
        headers = [("content-type", self.content_type)]
        if self.length is not None:
            headers.append(("content-length", str(self.length)))
        return headers

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.head:
            yield chunk
        self.head = []  # sent: no need to keep it
        if self.rest is not None:
            scanner = self.scanner
            async for chunk in self.rest:
                if chunk:
                    self._scan(chunk)
                    yield chunk
            if not scanner.finished:
                self._refuse(malformed_multipart("the body ends before its closing boundary"))

    def _scan(self, chunk: bytes) -> None:
        try:
            self.scanner.feed(chunk)
        except GatewayError as refusal:
            self._refuse(refusal)

    def _refuse(self, refusal: GatewayError) -> None:
        """End the upload before the upstream has all of it (so it acts on none of it); the caller gets `refusal`."""
        self.refusal = refusal
        raise refusal


_MODEL_PART_HEAD = b'\r\nContent-Disposition: form-data; name="model"\r\n\r\n'


def _is_model_part(headers: bytes) -> bool:
    """Whether a part's header block (from the CRLF after its delimiter) names the `model` field, not a file."""
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-disposition":
            _, options = parse_options_header(value.strip())
            return options.get(b"name") == b"model" and b"filename" not in options
    return False


async def read_upload(
    request: Request, limit: int, guard: CallGuard, *, fields: tuple[str, ...], file_part: str | None
) -> Upload:
    """Read a multipart request until `fields` and the start of `file_part` are known.

    Raises 415 for a body that is not multipart/form-data, 413 over `limit`, the guard's error (a 408)
    when that part takes too long to arrive, and 400 when a required part is missing; in each case
    before anything went upstream. (The rest streams upstream within the call's own deadline.)
    """
    content_type = request.headers.get("content-type", "")
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise GatewayError(
            415, "This endpoint takes multipart/form-data (a file upload).", code="unsupported_media_type"
        )
    declared_header = request.headers.get("content-length")
    declared = int(declared_header) if declared_header and is_ascii_digits(declared_header) else None
    if declared is not None and declared > limit:
        raise body_too_large(limit)

    scanner = FormScanner(boundary, ROUTING_FIELDS.union(fields))
    upload = Upload(content_type, declared, scanner.fields, scanner)
    stream = request.stream()
    size = 0
    exhausted = True
    while True:
        try:
            chunk = await guard.run(anext(stream))
        except StopAsyncIteration:
            break
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        upload.head.append(chunk)
        scanner.feed(chunk)
        # Stream the rest only when its length is known, so the upstream gets a complete
        # request or, on an oversized body, nothing at all.
        if declared is not None and _has_required(scanner, fields, file_part):
            exhausted = False
            break
    if exhausted:
        if not scanner.finished:
            raise malformed_multipart("the body ends before its closing boundary")
        _check_required(scanner, fields, file_part)
        upload.length = size  # read whole: the upstream gets a plain Content-Length
    else:
        upload.rest = stream
    return upload


def malformed_multipart(reason: str) -> GatewayError:
    return GatewayError(400, f"Could not parse the multipart form: {reason}.", code="invalid_multipart")


def _has_required(scanner: FormScanner, fields: tuple[str, ...], file_part: str | None) -> bool:
    """Whether the rest may stream: an empty field counts as missing, as in _check_required."""
    return all(scanner.fields.get(name) for name in fields) and (file_part is None or file_part in scanner.file_parts)


def _check_required(scanner: FormScanner, fields: tuple[str, ...], file_part: str | None) -> None:
    if file_part is not None and file_part not in scanner.file_parts:
        raise GatewayError(400, f"The '{file_part}' file part is missing.", param=file_part, code="missing_file")
    for name in fields:
        if not scanner.fields.get(name):
            code = "missing_model" if name == "model" else "missing_field"
            raise GatewayError(400, f"The '{name}' form field is missing.", param=name, code=code)
