"""Token usage from an answer, a stream event or a stored object (run, response), for the access log, the token
metrics and the budgets (which all read the access record's counts).

Usage is read from where Azure reports it, parsed, never searched for: the top-level `usage` of an answer (chat,
completions, embeddings, images, responses), of a stream's usage chunk, or of the `response` a Responses stream's
last event (`response.completed`, `.incomplete`, `.failed`) carries. A `usage` key anywhere else is not Azure's: a
Responses answer echoes the caller's `metadata`, `user`, tools and schemas, any of which may hold one.

Every count is a whole number from 0 to MAX_COUNT: a count no call could spend (2**63, say) is clamped to it, and
anything else (a negative or fractional number, a boolean, a string) is no count at all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import orjson

# The most one count of one call may be: no model reads or writes a billion tokens in one call (the largest contexts
# are some millions), so a count beyond is Azure misreporting, never spending. docs/operations.md says so.
MAX_COUNT = 10**9
# usage_of's quick test of five counts at once: their bitwise or is from 0 to under this power of two only when each
# is (a negative int's bits or'd in make the result negative), and then each is in range (2**29 < MAX_COUNT).
_QUICK_BOUND = 2**29
# The longest model name kept (Azure's are some 30 characters); a longer one is no name at all.
_MAX_MODEL = 200

# The Responses stream events that end a response and carry it whole, usage included.
RESPONSE_END_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

_USAGE_KEY, _MODEL_KEY = b'"usage"', b'"model"'
# Keys tried from the end of an answer before it is parsed whole (see read_usage).
_TAIL_ATTEMPTS = 8
# An answer up to this size is decoded whole against the shape read (see read_usage): msgspec skips what it does not
# keep at some 4 kB a microsecond (a 16 kB chat answer: 4.7 us), and beyond it the tail read, whose cost does not grow
# with the answer (6.5 us), is cheaper.
_DECODE_BYTES = 16384
# An answer of another shape up to this size is parsed whole: orjson builds it in a few microseconds, less than the
# search for its tail's keys costs (a 0.5 kB chat answer: 2 us whole, 12 us by its tail; bench/usage_read.py).
_WHOLE_PARSE_BYTES = 4096
_SPACE = b" \t\r\n"


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None  # the model that answered, as the answer names it
    # Of the prompt, the tokens read from Azure's prompt cache; of the completion, those spent reasoning.
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


# A usage as Azure's chat answers and usage chunks report it: five counts, each a whole number from 0 to MAX_COUNT.
# read_usage decodes an answer against this shape; any other (a Responses answer's names, a count missing or out of
# range, a string, a float) fails the decode, and usage_of reads it instead, to the same result.
_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class _PromptDetails(msgspec.Struct):
    cached_tokens: _Count


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: _Count


class _ChatUsage(msgspec.Struct):
    prompt_tokens: _Count
    completion_tokens: _Count
    total_tokens: _Count
    prompt_tokens_details: _PromptDetails
    completion_tokens_details: _CompletionDetails


class _Answer(msgspec.Struct):
    """What read_usage keeps of an answer: its top-level model and usage. Every other member is skipped unbuilt."""

    model: Any = None
    usage: _ChatUsage | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode


def token_count(value: Any) -> int | None:
    """A count as the gateway keeps it: a whole number from 0, clamped to MAX_COUNT; None for anything else (a
    negative or fractional number, a boolean, a string, null). JSON has numbers, not integers, and orjson reads one
    past 64 bits as a float: 18446744073709551616 is as whole as 7."""
    if type(value) is int:  # the usual case first (a bool is an int, but not of this type)
        return None if value < 0 else min(value, MAX_COUNT)
    if isinstance(value, float):
        if not (value >= 0 and value.is_integer()):  # NaN and the infinities are not whole either
            return None
        return min(int(value), MAX_COUNT)
    return None


def usage_of(usage: Any, model: Any = None) -> Usage | None:
    """A parsed `usage` object in either API's names (chat's prompt/completion, the Responses API's input/output);
    None when it reports no count at all.

    Nearly every answer counts through here in chat's shape, its five counts whole numbers in range: those are read
    by subscript and tested together (_QUICK_BOUND), at some half of _any_usage's way (a `get`, and a `_detail` call
    for each detail); anything else is read by _any_usage, to the same result."""
    try:
        prompt, completion, total = usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    except (KeyError, TypeError):  # not a dict, a count or a detail missing, a detail that is not a dict
        return _any_usage(usage, model)
    if (
        type(prompt) is type(completion) is type(total) is type(cached) is type(reasoning) is int  # (no bool is)
        and 0 <= prompt | completion | total | cached | reasoning < _QUICK_BOUND
    ):
        return Usage(prompt, completion, total, model_name(model), cached, reasoning)
    return _any_usage(usage, model)


def _any_usage(usage: Any, model: Any) -> Usage | None:
    """usage_of for any `usage`: each count read on its own, in either API's names, only what is not a plain whole
    number in range going through token_count (each call of which would cost the common case more than its test)."""
    if type(usage) is not dict:
        return None
    get = usage.get
    prompt = get("prompt_tokens")
    if type(prompt) is not int or not 0 <= prompt <= MAX_COUNT:
        prompt = token_count(prompt)
        if prompt is None:
            prompt = token_count(get("input_tokens"))
    completion = get("completion_tokens")
    if type(completion) is not int or not 0 <= completion <= MAX_COUNT:
        completion = token_count(completion)
        if completion is None:
            completion = token_count(get("output_tokens"))
    total = get("total_tokens")
    if type(total) is not int or not 0 <= total <= MAX_COUNT:
        total = token_count(total)
    if prompt is None and completion is None and total is None:
        return None
    cached = _detail(usage, "prompt_tokens_details", "input_tokens_details", "cached_tokens")
    reasoning = _detail(usage, "completion_tokens_details", "output_tokens_details", "reasoning_tokens")
    return Usage(prompt, completion, total, model_name(model), cached, reasoning)


def answer_usage(answer: Any) -> Usage | None:
    """The usage of a parsed answer (or stream chunk, or stored object): its own top-level `usage` and `model`."""
    return usage_of(answer.get("usage"), answer.get("model")) if isinstance(answer, dict) else None


def response_event_usage(event: Any) -> Usage | None:
    """The usage a Responses stream event reports: that of the response its last event carries, else None."""
    if not isinstance(event, dict) or event.get("type") not in RESPONSE_END_EVENTS:
        return None
    return answer_usage(event.get("response"))


def model_name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_MODEL else None


def _detail(usage: dict[str, Any], chat_key: str, responses_key: str, name: str) -> int | None:
    """`name`'s count in the first of `usage`'s detail objects (chat's, then the Responses API's) that has one."""
    chat = usage.get(chat_key)
    if type(chat) is dict:
        count = chat.get(name)
        if type(count) is int and 0 <= count <= MAX_COUNT:
            return count
        if (count := token_count(count)) is not None:
            return count
    responses = usage.get(responses_key)
    return token_count(responses.get(name)) if type(responses) is dict else None


def read_usage(data: bytes) -> Usage | None:
    """The top-level usage (and model) of a JSON object's bytes: a whole answer, or a stream event's data.

    An answer up to _DECODE_BYTES is decoded whole against the shape of what is read (_Answer): msgspec builds the
    model and the usage and skips the rest unbuilt, where parsing it into objects would build its content-filter
    results too (a score of small objects: most of the work). One of another shape up to _WHOLE_PARSE_BYTES is parsed
    whole (orjson).

    Any other answer is read from its tail when it can be (one that is not JSON as a whole, a name not UTF-8, say,
    may still be). An embeddings answer is megabytes of floats and orjson parses them at some 3.6 us a kilobyte (100
    inputs of 1536 dimensions: 3.2 MB, 11.5 ms; 1000 inputs: 32 MB, 167 ms), where its tail, `"model": ...,
    "usage": {...}}`, parses in about a microsecond whatever the size. Azure writes `usage` (and `model`) among the
    last keys of every answer (chat's keys are sorted; embeddings, images and responses end with it, a response's
    followed only by `user` and `metadata`).

    So the keys named `"usage"` and `"model"` are tried from the end: `{` + the bytes from such a key to the end
    parses as JSON only when the key belongs to the top-level object. From a key in a nested object (the caller's
    `metadata`, a tool's schema) the rest closes more objects than the one `{` opens; a `"usage"` inside a string
    has its quotes escaped; the keys after it in the top-level object come along and do no harm. The first parse
    that succeeds has every top-level key from there on; an earlier one is needed only when `model` comes before
    `usage`. After _TAIL_ATTEMPTS keys that were not top-level ones, the object is parsed whole: the answer is held
    whole already (at most gateway.maxResponseBytes), and no answer of Azure's puts that many nested keys of these
    names after its own: only an answer echoing the caller's tools or schemas after its usage could (an extra
    parse, never a wrong count).
    """
    if len(data) > _DECODE_BYTES:
        return tail_usage(data)
    try:
        answer = _decode_answer(data)
    except (msgspec.DecodeError, RecursionError):  # (nested deeper than msgspec goes: orjson's bound is lower)
        if len(data) <= _WHOLE_PARSE_BYTES:
            try:
                return answer_usage(orjson.loads(data))
            except orjson.JSONDecodeError:
                pass
        return tail_usage(data)
    usage = answer.usage
    if usage is None:
        return None
    return Usage(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        model_name(answer.model),
        usage.prompt_tokens_details.cached_tokens,
        usage.completion_tokens_details.reasoning_tokens,
    )


def tail_usage(data: bytes) -> Usage | None:
    """read_usage's answer, read from the tail of `data` whatever its size (see read_usage)."""
    found: dict[str, Any] = {}
    wanted = [_USAGE_KEY, _MODEL_KEY]
    end = len(data)
    attempts = 0
    while wanted:
        at = max(data.rfind(key, 0, end) for key in wanted)
        if at < 0:
            break
        end = at
        if not _is_key(data, at):
            continue
        attempts += 1
        if attempts > _TAIL_ATTEMPTS:
            return _whole_usage(data)
        try:
            tail = orjson.loads(b"{" + data[at:])
        except orjson.JSONDecodeError:
            continue
        found = tail  # every top-level key from `at` on: what an earlier parse found, and more
        wanted = [key for key in wanted if key[1:-1].decode() not in tail]
    if "usage" not in found:
        return None
    return usage_of(found["usage"], found.get("model"))


def _is_key(data: bytes, at: int) -> bool:
    """Whether the quote at `at` opens a key: it is not escaped (an even run of backslashes before it), and a colon
    follows the 7-byte name."""
    slashes = 0
    while at - slashes > 0 and data[at - slashes - 1] == 0x5C:  # "\\"
        slashes += 1
    if slashes % 2:
        return False
    after = at + 7
    while after < len(data) and data[after] in _SPACE:
        after += 1
    return data[after : after + 1] == b":"


def _whole_usage(data: bytes) -> Usage | None:
    try:
        return answer_usage(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None


# Bytes o200k_base (the encoding of gpt-4o and later models) packs densely: digits go at most three to a token and
# a capital starts a new piece (base64, hex, ids, numbers), a backslash starts a LaTeX or regex command, and a UTF-8
# 4-byte lead is an emoji or a rare script's character (1 to 3 tokens). Each counts one token more.
_DENSE = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\\" + bytes(range(0xF0, 0xF5))
_NOT_DENSE = bytes(sorted(set(range(256)) - set(_DENSE)))


def estimate_prompt_tokens(body: bytes) -> int:
    """The prompt tokens of a request, estimated from its bytes: a quarter token per byte, plus one per dense byte.

    Measured with `python -m bench.estimate` against o200k_base counts of 82 request bodies (prose, code, tools,
    CJK, emoji, base64, numbers): never below 0.84 of the real count, 1.34 times it at the median, where a plain
    quarter of the bytes fell to 0.36 on base64 and hashes. About 1.3 us a kilobyte; a tokenizer costs some 60 us."""
    return -(-len(body) // 4) + len(body.translate(None, _NOT_DENSE))


class CountedOnce:
    """The ids of the objects whose usage this process has counted (runs, background responses), so that polling
    one counts it once. Bounded: the least recently counted are forgotten first; another instance, or this one
    after forgetting, counts an object again if it reads it done again."""

    __slots__ = ("_ids", "_max_entries")

    def __init__(self, max_entries: int = 50_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._max_entries = max_entries

    def first(self, object_id: str) -> bool:
        """True the first time `object_id` is given (it is remembered from then on), False after."""
        ids = self._ids
        if object_id in ids:
            ids.move_to_end(object_id)
            return False
        ids[object_id] = None
        if len(ids) > self._max_entries:
            ids.popitem(last=False)
        return True
