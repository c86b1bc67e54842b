from core.translation.usage import Usage, find_usage


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


def test_the_last_usage_key_is_read_not_an_earlier_one() -> None:
    # A Responses answer names "usage" earlier, as a property of a tool's schema.
    body = (
        b'{"tools":[{"type":"function","parameters":{"properties":{"usage":{"type":"integer"}}}}],'
        b'"usage":{"input_tokens":7,"output_tokens":2,"total_tokens":9}}'
    )
    usage = find_usage(b'{"x":{"usage":{"prompt_tokens":1}},' + body[1:])
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 2, 9)


def test_partial_usage_is_kept() -> None:
    usage = find_usage(b'{"usage":{"prompt_tokens":5,"completion_tokens":2}}')
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 2, None)
    usage = find_usage(b'{"usage":{"total_tokens":8}}')
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (None, None, 8)


def test_the_answering_model_is_the_last_model_key() -> None:
    usage = find_usage(b'{"model":"first","usage":{"total_tokens":2},"model":"gpt-4o-2024-08-06"}')
    assert usage is not None and usage.model == "gpt-4o-2024-08-06"
    assert find_usage(b'{"usage":{"total_tokens":2}}') == Usage(None, None, 2, None)


def test_a_model_name_that_is_not_utf8_is_kept_with_replacement_characters() -> None:
    usage = find_usage(b'{"model":"gpt-\xff","usage":{"total_tokens":2}}')
    assert usage is not None and usage.model == "gpt-\ufffd"
