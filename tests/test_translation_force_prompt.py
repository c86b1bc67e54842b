"""forcePrompt: a completions answer rewritten as the chat completion the client asked for."""

from core.translation.force_prompt import completion_chunk_to_chat_chunk, completion_to_chat

USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_a_completion_becomes_a_chat_completion_with_its_envelope_and_choices() -> None:
    completion = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": "gpt-35-turbo-instruct",
        "choices": [
            {"text": "Hi", "index": 1, "finish_reason": "stop", "logprobs": {"tokens": ["Hi"]}},
            {"text": "Hello", "index": 0, "finish_reason": "length", "logprobs": None},
        ],
        "usage": USAGE,
    }
    assert completion_to_chat(completion) == {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-35-turbo-instruct",
        "choices": [
            {"index": 1, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop", "logprobs": None},
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "length",
                "logprobs": None,
            },
        ],
        "usage": USAGE,
    }


def test_what_a_completion_leaves_out_gets_the_chat_defaults() -> None:
    """No id, created, model, usage, text or index: empty strings, 0, no usage, the choice's position."""
    completion = {"choices": [{"text": "a"}, {"finish_reason": "stop"}], "usage": None}
    assert completion_to_chat(completion) == {
        "id": "",
        "object": "chat.completion",
        "created": 0,
        "model": "",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": None, "logprobs": None},
            {"index": 1, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop", "logprobs": None},
        ],
    }
    assert completion_to_chat({"choices": None})["choices"] == []


def test_a_completion_chunk_becomes_a_chat_chunk() -> None:
    chunk = {
        "id": "cmpl-2",
        "object": "text_completion",
        "created": 1700000001,
        "model": "instruct",
        "choices": [{"text": "lo", "index": 2, "finish_reason": None}, {"index": 0, "finish_reason": "stop"}],
    }
    assert completion_chunk_to_chat_chunk(chunk, first=False) == {
        "id": "cmpl-2",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "instruct",
        "choices": [
            {"index": 2, "delta": {"content": "lo"}, "finish_reason": None},
            {"index": 0, "delta": {"content": ""}, "finish_reason": "stop"},
        ],
    }


def test_the_first_chat_chunk_names_the_role_and_defaults_fill_the_rest() -> None:
    chunk = {"choices": [{"text": "He"}, {"text": "Ho", "finish_reason": "length"}], "usage": USAGE}
    assert completion_chunk_to_chat_chunk(chunk, first=True) == {
        "id": "",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "",
        "choices": [
            {"index": 0, "delta": {"content": "He", "role": "assistant"}, "finish_reason": None},
            {"index": 1, "delta": {"content": "Ho", "role": "assistant"}, "finish_reason": "length"},
        ],
        "usage": USAGE,
    }
