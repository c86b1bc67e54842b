"""Audio: transcriptions, translations and speech (``audio/*``)."""

from __future__ import annotations

import hashlib
import struct

from aiohttp import web

from ..routing import Call
from ..streams import send_chunks
from ..wire import SPEECH_TYPES, TEXT_TYPE, TRANSCRIPTION_FORMATS, azure_headers, invalid, json_answer, missing


def _audio_text(call: Call, verb: str) -> web.StreamResponse:
    """Transcriptions and translations: the text names the upload, rendered in the requested response_format."""
    upload = call.uploads.get("file")
    if upload is None:
        raise missing("file")
    response_format = call.body.get("response_format") or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise invalid(f"'response_format' must be one of {sorted(TRANSCRIPTION_FORMATS)}", "response_format")
    text = f"{verb} {upload.size} bytes of {upload.filename}"
    if response_format == "json":
        return json_answer(call.request, {"text": text})
    duration = round(max(upload.size, 1) / 32000, 2)  # as if 16 kHz, 16-bit mono
    if response_format == "verbose_json":
        segment = {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": duration,
            "text": text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }
        task = "transcribe" if verb == "Transcribed" else "translate"
        answer = {"task": task, "language": "english", "duration": duration, "text": text, "segments": [segment]}
        return json_answer(call.request, answer)
    if response_format == "srt":
        body = f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n\n"
    elif response_format == "vtt":
        body = f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n\n"
    else:
        body = text
    return web.Response(body=body.encode(), headers=azure_headers(call.request, TEXT_TYPE))


async def audio_transcriptions(call: Call) -> web.StreamResponse:
    return _audio_text(call, "Transcribed")


async def audio_translations(call: Call) -> web.StreamResponse:
    return _audio_text(call, "Translated")


def _speech_header(response_format: str, size: int) -> bytes:
    if response_format == "mp3":
        return b"ID3\x04\x00\x00\x00\x00\x00\x00"
    if response_format == "wav":  # 24 kHz, 16-bit mono PCM, like OpenAI's
        fmt = struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16)
        sizes = struct.pack("<I", max(size - 8, 0)), struct.pack("<I", max(size - 44, 0))
        return b"RIFF" + sizes[0] + b"WAVEfmt " + fmt + b"data" + sizes[1]
    return b""


def _speech_slice(header: bytes, block: bytes, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of ``header + block + block + ...`` without building the whole thing."""
    parts = []
    if start < len(header):
        parts.append(header[start : min(end, len(header))])
        start = len(header)
    if start < end:
        offset = (start - len(header)) % len(block)
        count = end - start
        parts.append((block * ((offset + count) // len(block) + 1))[offset : offset + count])
    return b"".join(parts)


async def audio_speech(call: Call) -> web.StreamResponse:
    """Text to speech: ``x-sim-audio-bytes`` deterministic bytes (from input and voice), written in several chunks."""
    text = call.body.get("input")
    if not isinstance(text, str) or not text:
        raise missing("input")
    voice = call.body.get("voice")
    if not isinstance(voice, str) or not voice:
        raise missing("voice")
    response_format = call.body.get("response_format") or "mp3"
    if response_format not in SPEECH_TYPES:
        raise invalid(f"'response_format' must be one of {sorted(SPEECH_TYPES)}", "response_format")
    size = call.behaviour.audio_bytes
    header = _speech_header(response_format, size)[:size]
    block = hashlib.shake_128(f"{voice}:{text}".encode()).digest(4096)
    pieces = call.behaviour.chunks
    bounds = [i * size // pieces for i in range(pieces + 1)]
    chunks = (_speech_slice(header, block, bounds[i], bounds[i + 1]) for i in range(pieces))
    return await send_chunks(call, chunks, SPEECH_TYPES[response_format])
