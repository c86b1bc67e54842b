"""Usage read from what Azure answers: the top-level `usage` (and `model`), parsed, whatever the caller's text
echoed around it; counts clamped to MAX_COUNT; big answers read from their tail."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.translation import usage
from core.translation.usage import (
    MAX_COUNT,
    CountedOnce,
    Usage,
    answer_usage,
    estimate_prompt_tokens,
    read_usage,
    response_event_usage,
    tail_usage,
    token_count,
)

USAGE = b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}'


def counts(usage: Usage | None) -> tuple[int | None, int | None, int | None] | None:
    return None if usage is None else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


def test_usage_at_the_end_of_a_body_with_nested_details() -> None:
    body = (
        b'{"choices":[],"usage":{"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":0},'
        b'"prompt_tokens":11,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":14}}'
    )
    assert counts(read_usage(body)) == (11, 3, 14)


def test_responses_style_usage_and_absent_usage() -> None:
    assert counts(read_usage(b'{"usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}')) == (4, 6, 10)
    assert read_usage(b'{"usage":null}') is None
    assert read_usage(b'{"data":[]}') is None
    assert read_usage(b"") is None
    assert read_usage(b'[{"usage":{"total_tokens":3}}]') is None  # not an object: no top level to read
    assert read_usage(b'{"usage":{"total_tokens":3}') is None  # not JSON


def test_a_nested_usage_is_not_the_answers_before_or_after_its_own() -> None:
    """A run step, a tool's schema or the caller's metadata may hold a `usage` of their own."""
    body = (
        b'{"step_details":{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}},'
        b'"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25},'
        b'"metadata":{"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}}'
    )
    assert counts(read_usage(body)) == (20, 5, 25)
    assert read_usage(b'{"metadata":{"usage":{"total_tokens":0}},"tools":[{"usage":{"total_tokens":1}}]}') is None


def hostile_response(metadata: dict[str, Any], user: str | None) -> dict[str, Any]:
    """A Responses answer as Azure orders it: the caller's `tools`, `user` and `metadata` echoed around the usage."""
    return {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4o-dep",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": '"usage": {"total_tokens": 1}'}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"properties": {"usage": {"type": "integer"}}}}],
        "usage": {
            "input_tokens": 40,
            "input_tokens_details": {"cached_tokens": 8},
            "output_tokens": 60,
            "output_tokens_details": {"reasoning_tokens": 16},
            "total_tokens": 100,
        },
        "user": user,
        "metadata": metadata,
    }


@pytest.mark.parametrize(
    ("metadata", "user"),
    [
        ({"usage": "0"}, None),
        ({"usage": '{"input_tokens": 0}', "model": "not-the-model"}, '"usage": {"total_tokens": 0}}'),
        ({"x\\": '", "usage": {"total_tokens": 0}, "y": "'}, '\\"usage\\":{\\"total_tokens\\":0}'),
        ({'a"usage': "1", "b\\": "usage"}, '","usage":{"total_tokens":1},"model":"x'),
    ],
)
def test_the_callers_metadata_and_user_echoed_after_the_usage_change_nothing(
    metadata: dict[str, Any], user: str | None
) -> None:
    body = orjson.dumps(hostile_response(metadata, user))
    assert read_usage(body) == Usage(40, 60, 100, "gpt-4o-dep", cached_tokens=8, reasoning_tokens=16)


def test_a_key_whose_name_ends_in_an_escaped_quote_and_usage_is_not_usage() -> None:
    body = b'{"usage":{"total_tokens":9},"x\\"usage":{"total_tokens":0}}'
    assert counts(read_usage(body)) == (None, None, 9)
    alone = b'{"x\\"usage":{"total_tokens":5}}'
    assert read_usage(alone) is None
    assert counts(read_usage(b'{"x\\\\":1,"usage":{"total_tokens":4}}')) == (None, None, 4)  # "x\\" then usage


def test_whitespace_anywhere_json_allows_it() -> None:
    body = b'{\n  "model" :\t"gpt-4o",\r\n  "usage" \n:\n {"prompt_tokens": 3, "total_tokens": 3}\n}\n'
    assert read_usage(body) == Usage(3, None, 3, "gpt-4o")


def test_any_one_number_is_usage() -> None:
    """Whatever part of the usage an answer reports is kept; only none at all is no usage."""
    expected = {
        b'{"usage":{"prompt_tokens":3,"completion_tokens":2}}': (3, 2, None),
        b'{"usage":{"completion_tokens":2}}': (None, 2, None),
        b'{"usage":{"total_tokens":7}}': (None, None, 7),
        b'{"usage":{"total_tokens":0}}': (None, None, 0),
    }
    for body, count in expected.items():
        assert counts(read_usage(body)) == count
    assert read_usage(b'{"usage":{"prompt_tokens":"3","total_tokens":-1}}') is None
    assert read_usage(b'{"usage":{}}') is None


@pytest.mark.parametrize(
    ("reported", "counted"),
    [
        (b"0", 0),
        (b"1000000000", MAX_COUNT),
        (b"1000000001", MAX_COUNT),
        (b"9223372036854775808", MAX_COUNT),  # 2**63
        (b"18446744073709551616", MAX_COUNT),  # 2**64: orjson reads it as a float
        (b"1e400", None),  # infinity: orjson refuses the answer
        (b"-1", None),
        (b"-0.0", 0),
        (b"7.0", 7),  # JSON has numbers: a whole one counts
        (b"1e3", 1000),
        (b"7.5", None),
        (b"true", None),
        (b'"12"', None),
        (b"null", None),
        (b"[5]", None),
    ],
)
def test_counts_are_clamped_and_anything_but_a_count_is_none(reported: bytes, counted: int | None) -> None:
    body = b'{"model":"m","usage":{"prompt_tokens":%s,"completion_tokens":%s,"total_tokens":%s}}' % ((reported,) * 3)
    usage = read_usage(body)
    assert (usage and counts(usage)) == (None if counted is None else (counted,) * 3)


def test_a_count_beyond_what_the_parser_reads_is_clamped_when_the_answer_is_parsed() -> None:
    assert answer_usage({"usage": {"total_tokens": 2**64, "prompt_tokens": 2**200}}) == Usage(
        MAX_COUNT, None, MAX_COUNT
    )
    values = (2**63, -(2**63), True, False, 3.0, 3.5, 1e300, float("nan"), float("inf"), -1.0, "3", None)
    assert [token_count(value) for value in values] == [
        MAX_COUNT, None, None, None, 3, None, MAX_COUNT, None, None, None, None, None,
    ]  # fmt: skip


def test_usage_names_the_model_that_answered() -> None:
    assert read_usage(b'{"model": "gpt-4o-2024-08-06",' + USAGE + b"}") == Usage(3, 2, 5, "gpt-4o-2024-08-06")
    unnamed = read_usage(b"{" + USAGE + b"}")
    assert unnamed is not None and unnamed.model is None
    after = read_usage(b"{" + USAGE + b',"model":"gpt-4o"}')
    assert after is not None and after.model == "gpt-4o"


def test_the_answers_own_model_is_its_top_level_one() -> None:
    """A response's input items or a run's tools may name a model, before or after the answer's own key."""
    usage = read_usage(b'{"tools":[{"model":"tool-model"}],"model":"gpt-4o",' + USAGE + b',"m":{"model":"x"}}')
    assert usage is not None and usage.model == "gpt-4o"
    for odd in (b'"model":1,', b'"model":null,', b'"model":"",', b'"model":"' + b"m" * 201 + b'",'):
        named = read_usage(b"{" + odd + USAGE + b"}")
        assert named is not None and named.model is None


def test_a_model_name_that_is_not_utf8_is_no_name_and_the_usage_still_counts() -> None:
    assert read_usage(b'{"model":"gpt-\xff",' + USAGE + b"}") == Usage(3, 2, 5)  # orjson refuses it: no JSON


def test_cached_and_reasoning_tokens_are_counted_apart_in_both_apis() -> None:
    chat = (
        b'{"model":"gpt-5-mini-2025-08-07","usage":{"completion_tokens":40,"completion_tokens_details":'
        b'{"accepted_prediction_tokens":0,"reasoning_tokens":32},"prompt_tokens":1200,"prompt_tokens_details":'
        b'{"audio_tokens":0,"cached_tokens":1024},"total_tokens":1240}}'
    )
    usage = read_usage(chat)
    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        1200, 1024, 40, 32,
    )  # fmt: skip
    responses = (
        b'{"model":"o4-mini","usage":{"input_tokens":300,"input_tokens_details":{"cached_tokens":0},'
        b'"output_tokens":90,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":390}}'
    )
    usage = read_usage(responses)
    assert usage is not None and (usage.cached_tokens, usage.reasoning_tokens) == (0, 64)
    plain = read_usage(b'{"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}')
    assert plain is not None and (plain.cached_tokens, plain.reasoning_tokens) == (None, None)


def embeddings_answer(inputs: int, dimensions: int = 1536) -> bytes:
    vector = [0.0123456789 * (i % 7 - 3) for i in range(dimensions)]
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(inputs)]
    answer = {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 80}}
    return orjson.dumps({**answer, "usage": {"prompt_tokens": 80, "total_tokens": 80}})


def test_a_big_embeddings_answer_is_read_from_its_tail() -> None:
    """The floats before the usage are never parsed: spoiled, they change nothing (bench/usage.py times it)."""
    body = embeddings_answer(200)  # some 3.7 MB of floats
    assert len(body) > 3_000_000
    assert read_usage(body) == Usage(80, None, 80, "text-embedding-3-small")
    spoiled = body.replace(b"0.0", b"0.0.", 1)  # no longer JSON: a whole parse would fail
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(spoiled)
    assert read_usage(spoiled) == Usage(80, None, 80, "text-embedding-3-small")


def test_many_nested_keys_after_the_usage_are_read_by_parsing_the_whole() -> None:
    decoys = {f"k{i}": {"usage": {"total_tokens": 0}, "model": "decoy"} for i in range(20)}
    body = orjson.dumps({"model": "gpt-4o", "usage": {"total_tokens": 12}, "metadata": decoys})
    assert read_usage(body) == Usage(None, None, 12, "gpt-4o")
    without = orjson.dumps({"model": "gpt-4o", "metadata": decoys})
    assert read_usage(without) is None
    # Past the bounded tries the whole is parsed: spoiled before the usage, it reads as nothing.
    assert read_usage(b"{0," + body[1:]) is None


def test_nested_keys_around_a_big_value_are_read_right() -> None:
    """Keys nested one in another around a big value: each try would parse the value again, were the tries not
    bounded (bench/usage.py times it)."""
    nested: dict[str, Any] = {"pad": "x" * 200_000}
    for _ in range(200):
        nested = {"usage": 0, "inner": nested}
    body = orjson.dumps({"model": "gpt-4o", "usage": {"total_tokens": 12}, "metadata": nested})
    assert read_usage(body) == Usage(None, None, 12, "gpt-4o")


def test_a_responses_streams_last_events_carry_its_usage_and_no_other_does() -> None:
    response = hostile_response({"usage": "0"}, None)
    expected = Usage(40, 60, 100, "gpt-4o-dep", cached_tokens=8, reasoning_tokens=16)
    for kind in ("response.completed", "response.incomplete", "response.failed"):
        assert response_event_usage({"type": kind, "response": response}) == expected
    for other in ("response.created", "response.in_progress", "response.output_text.done", None):
        assert response_event_usage({"type": other, "response": response}) is None
    assert response_event_usage({"type": "response.completed", "response": None}) is None
    assert response_event_usage({"type": "response.completed", "usage": response["usage"]}) is None
    assert response_event_usage(["response.completed"]) is None


def test_counted_once_remembers_a_bounded_number_of_ids() -> None:
    once = CountedOnce(max_entries=3)
    assert [once.first(i) for i in ("a", "b", "a", "c", "d")] == [True, True, False, True, True]
    assert once.first("a") is False  # recently seen: kept
    assert once.first("b") is True  # the least recent, forgotten when d came


# -- generated: the tail read agrees with parsing the whole answer, whatever is nested in it, and wherever

KEYS = st.sampled_from(["usage", "model", "x", 'a"usage', "usage\\", "total_tokens", "prompt_tokens", ""])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(['"usage":', '\\"usage\\":', '","usage":{"total_tokens":1},"', "model", "usage"]),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
USAGES = (
    st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"]),
        st.one_of(st.integers(min_value=-5, max_value=2**64 - 1), st.booleans(), st.floats(allow_nan=False)),
    )
    | JSON_VALUES
)
ANSWERS = st.dictionaries(KEYS, JSON_VALUES, max_size=6).flatmap(
    lambda answer: st.fixed_dictionaries({}, optional={"usage": USAGES, "model": JSON_VALUES}).map(
        lambda own: {**answer, **own}
    )
)
LAYOUTS = st.sampled_from(
    [
        orjson.dumps,
        lambda value: json.dumps(value).encode(),
        lambda value: json.dumps(value, indent=2, ensure_ascii=False).encode(),
    ]
)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(ANSWERS, st.booleans(), LAYOUTS)
def test_the_tail_read_is_the_whole_answers_usage(answer: dict[str, Any], usage_last: bool, dumps: Any) -> None:
    if usage_last and "usage" in answer:
        answer = {**{k: v for k, v in answer.items() if k != "usage"}, "usage": answer["usage"]}
    body = dumps(answer)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:  # an integer beyond 64 bits, which json writes and orjson does not read
        assert read_usage(body) is None
        assert tail_usage(body) is None
        return
    assert read_usage(body) == answer_usage(parsed)
    assert tail_usage(body) == answer_usage(parsed)  # small answers are parsed whole: the tail read on its own


def test_the_prompt_estimate_counts_dense_bytes_one_token_more() -> None:
    """A quarter token per byte, and one more for each byte o200k_base packs densely (bench/estimate.py)."""
    assert estimate_prompt_tokens(b"") == 0
    assert estimate_prompt_tokens(b"hello world, a plain sentence") == 8  # ceil(29 / 4)
    digest = b"3f786850e387550fdab836ed7e6dc881de23001b"  # a git hash: 26 digits
    assert estimate_prompt_tokens(digest) == 10 + 26
    assert estimate_prompt_tokens(b"ABCDEFGH") == 2 + 8
    assert estimate_prompt_tokens(b"\\frac{a}{b}") == 3 + 1
    assert estimate_prompt_tokens("\U0001f600".encode()) == 1 + 1  # an emoji: a 4-byte sequence
    assert estimate_prompt_tokens("日本語".encode()) == 3  # 9 bytes of 3-byte sequences: no 4-byte lead


@given(st.binary(max_size=200))
def test_the_prompt_estimate_is_never_below_a_quarter_token_per_byte(body: bytes) -> None:
    assert -(-len(body) // 4) <= estimate_prompt_tokens(body) <= -(-len(body) // 4) + len(body)


def test_an_answer_not_json_as_a_whole_or_nested_deeper_than_a_parser_goes_is_read_from_its_tail() -> None:
    """A small answer is decoded whole; one that cannot be (a byte not UTF-8 in its choices, arrays nested past
    msgspec's and orjson's depth) still counts, read from its tail."""
    choices = b'{"choices":[{"message":{"content":"\xff"}}],'
    not_utf8 = choices + b'"model":"gpt-4o","object":"chat.completion",' + USAGE + b"}"
    assert read_usage(not_utf8) == Usage(3, 2, 5, "gpt-4o")
    for depth in (600, 1100, 1900):  # past orjson's bound (1024); past msgspec's (the interpreter's recursion limit)
        deep = b'{"x":' + b"[" * depth + b"]" * depth + b',"model":"m",' + USAGE + b"}"
        assert len(deep) <= usage._WHOLE_PARSE_BYTES
        assert read_usage(deep) == Usage(3, 2, 5, "m")


WHOLE_COUNTS = st.one_of(
    st.sampled_from([0, 3, 2**29 - 1, 2**29, MAX_COUNT, MAX_COUNT + 1, -1, 2**64]),  # every bound, often
    st.integers(min_value=-5, max_value=MAX_COUNT + 5),
)
COUNTS = st.one_of(WHOLE_COUNTS, st.booleans(), st.floats(allow_nan=True), st.none(), st.text(max_size=3))
DETAILS = st.dictionaries(st.sampled_from(["cached_tokens", "reasoning_tokens", "audio_tokens"]), COUNTS) | COUNTS
CHAT_USAGES = st.dictionaries(
    st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"]), COUNTS
).flatmap(
    lambda counted: st.dictionaries(
        st.sampled_from(
            ["prompt_tokens_details", "completion_tokens_details", "input_tokens_details", "output_tokens_details"]
        ),
        DETAILS,
    ).map(lambda details: {**counted, **details})
)
# Chat's whole shape, its counts mostly whole numbers (in range or just out of it): the quick read's own cases.
MOSTLY_WHOLE = st.one_of(WHOLE_COUNTS, WHOLE_COUNTS, WHOLE_COUNTS, COUNTS)
WHOLE_CHAT_USAGES = st.fixed_dictionaries(
    {
        "prompt_tokens": MOSTLY_WHOLE,
        "completion_tokens": MOSTLY_WHOLE,
        "total_tokens": MOSTLY_WHOLE,
        "prompt_tokens_details": st.fixed_dictionaries({"cached_tokens": MOSTLY_WHOLE}),
        "completion_tokens_details": st.fixed_dictionaries({"reasoning_tokens": MOSTLY_WHOLE}),
    }
)


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(
    st.dictionaries(KEYS, JSON_VALUES, max_size=4),
    WHOLE_CHAT_USAGES | CHAT_USAGES | JSON_VALUES,
    st.one_of(st.none(), st.text(max_size=3), st.text(min_size=199, max_size=201), JSON_VALUES),
    LAYOUTS,
    st.sampled_from([0, 6000]),
)
def test_an_answers_decoded_usage_is_the_parsed_answers(
    members: dict[str, Any], reported: Any, model: Any, dumps: Any, padding: int
) -> None:
    """read_usage decodes an answer of up to 16 kB against chat's shape (msgspec): whatever its usage, model and other
    members hold, the same usage as parsing the answer and reading it the general way (an answer of another shape
    over 4 kB, `padding`, from its tail)."""
    answer = {"content": "x" * padding, **members, "model": model, "usage": reported}
    try:
        body = dumps(answer)
    except TypeError:  # orjson writes no integer beyond 64 bits; json does
        body = json.dumps(answer).encode()
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:  # an integer beyond 64 bits, which json writes and orjson does not read
        return
    assert len(body) <= usage._DECODE_BYTES
    assert read_usage(body) == answer_usage(parsed)


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(
    WHOLE_CHAT_USAGES | CHAT_USAGES | JSON_VALUES,
    st.one_of(st.none(), st.text(max_size=3), st.text(min_size=199, max_size=201)),
)
def test_the_chat_shaped_read_of_a_usage_is_the_general_reads(reported: Any, model: Any) -> None:
    """usage_of reads chat's usual shape its own quick way: whatever the counts and details hold, as _any_usage."""
    assert usage.usage_of(reported, model) == usage._any_usage(reported, model)


CHAT_USAGE = {
    "completion_tokens": 7,
    "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
    "prompt_tokens": 9,
    "prompt_tokens_details": {"cached_tokens": 2},
    "total_tokens": 16,
}


@pytest.mark.parametrize("value", [-1, 0, 2**29 - 1, 2**29, MAX_COUNT, MAX_COUNT + 1, 2**64, True, 1.0, 2.5, None, "3"])
@pytest.mark.parametrize(
    "where",
    [
        ("prompt_tokens",),
        ("completion_tokens",),
        ("total_tokens",),
        ("prompt_tokens_details", "cached_tokens"),
        ("completion_tokens_details", "reasoning_tokens"),
    ],
)
def test_each_count_of_chats_shape_at_each_bound_reads_as_the_general_read_does(
    where: tuple[str, ...], value: Any
) -> None:
    reported = json.loads(json.dumps(CHAT_USAGE))
    inner = reported
    for key in where[:-1]:
        inner = inner[key]
    inner[where[-1]] = value
    assert usage.usage_of(reported, "gpt-4o") == usage._any_usage(reported, "gpt-4o")


def test_a_usage_in_chats_shape_reads_every_count_and_the_answers_model() -> None:
    reported = CHAT_USAGE
    assert usage.usage_of(reported, "gpt-4o") == Usage(9, 7, 16, "gpt-4o", 2, 4)
    assert usage.usage_of({**reported, "total_tokens": MAX_COUNT + 1}, "gpt-4o") == Usage(
        9, 7, MAX_COUNT, "gpt-4o", 2, 4
    )
    assert usage.usage_of({**reported, "prompt_tokens": True}, None) == Usage(None, 7, 16, None, 2, 4)
