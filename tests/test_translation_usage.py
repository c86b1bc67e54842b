from core.translation.usage import find_usage


def test_usage_at_the_end_of_a_body_with_nested_details() -> None:
    body = (
        b'{"choices":[],"usage":{"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":0},'
        b'"prompt_tokens":11,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":14}}'
    )
    usage = find_usage(body)
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 3, 14)


def test_responses_style_usage_and_absent_usage() -> None:
    usage = find_usage(b'{"usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}')
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (4, 6)
    assert find_usage(b'{"usage":null}') is None
    assert find_usage(b'{"data":[]}') is None


def test_the_answers_own_usage_is_the_last_one() -> None:
    """A run step or tool output may carry a `usage` of its own before the answer's."""
    body = (
        b'{"step_details":{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}},'
        b'"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}'
    )
    usage = find_usage(body)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (20, 5, 25)


def test_any_one_number_is_usage() -> None:
    """Whatever part of the usage an answer reports is kept; only none at all is no usage."""
    counts = {
        b'{"usage":{"prompt_tokens":3,"completion_tokens":2}}': (3, 2, None),
        b'{"usage":{"completion_tokens":2}}': (None, 2, None),
        b'{"usage":{"total_tokens":7}}': (None, None, 7),
    }
    for body, expected in counts.items():
        usage = find_usage(body)
        assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == expected


USAGE = b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}'


def test_usage_names_the_model_that_answered() -> None:
    usage = find_usage(b'{"model": "gpt-4o-2024-08-06",' + USAGE + b"}")
    assert usage is not None and usage.model == "gpt-4o-2024-08-06"
    unnamed = find_usage(b"{" + USAGE + b"}")
    assert unnamed is not None and unnamed.model is None


def test_the_answers_own_model_is_the_last_one() -> None:
    """A response's input items or a run's tools may name a model before the answer's own key."""
    usage = find_usage(b'{"tools":[{"model":"tool-model"}],"model":"gpt-4o",' + USAGE + b"}")
    assert usage is not None and usage.model == "gpt-4o"


def test_a_model_name_that_is_not_utf8_is_read_with_replacement_characters() -> None:
    usage = find_usage(b'{"model":"gpt-\xff",' + USAGE + b"}")
    assert usage is not None and usage.model == "gpt-\ufffd"


def test_cached_and_reasoning_tokens_are_counted_apart_in_both_apis() -> None:
    chat = (
        b'{"model":"gpt-5-mini-2025-08-07","usage":{"completion_tokens":40,"completion_tokens_details":'
        b'{"accepted_prediction_tokens":0,"reasoning_tokens":32},"prompt_tokens":1200,"prompt_tokens_details":'
        b'{"audio_tokens":0,"cached_tokens":1024},"total_tokens":1240}}'
    )
    usage = find_usage(chat)
    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        1200, 1024, 40, 32,
    )  # fmt: skip
    responses = (
        b'{"model":"o4-mini","usage":{"input_tokens":300,"input_tokens_details":{"cached_tokens":0},'
        b'"output_tokens":90,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":390}}'
    )
    usage = find_usage(responses)
    assert usage is not None and (usage.cached_tokens, usage.reasoning_tokens) == (0, 64)
    plain = find_usage(b'{"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}')
    assert plain is not None and (plain.cached_tokens, plain.reasoning_tokens) == (None, None)
