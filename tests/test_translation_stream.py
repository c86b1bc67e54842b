import orjson
from hypothesis import given
from hypothesis import strategies as st

from core.translation.force_prompt import CompletionEventsAsChat
from core.translation.stream import StreamRewriter, event_json, is_filter_only
from core.translation.usage import Usage

FILTER_FIRST = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
    b'[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
)
TOKEN = (
    b'data: {"choices":[{"delta":{"content":"Hi"},"index":0}],"id":"chatcmpl-1","object":"chat.completion.chunk"}\n\n'
)
USAGE = b'data: {"choices":[],"id":"chatcmpl-1","usage":{"completion_tokens":2,"prompt_tokens":5,"total_tokens":7}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_filter_only_events_are_recognised_by_their_empty_id() -> None:
    assert is_filter_only(FILTER_FIRST)
    assert not is_filter_only(TOKEN)
    assert not is_filter_only(USAGE)  # choices: [] but a real id: the include_usage chunk stays
    assert not is_filter_only(DONE)


def test_normalised_stream_drops_filter_events_and_keeps_bytes_of_the_rest() -> None:
    rewriter = StreamRewriter(drop_filter_events=True)
    out = rewriter.feed(FILTER_FIRST + TOKEN[:20]) + rewriter.feed(TOKEN[20:] + USAGE + DONE)
    assert out == TOKEN + USAGE + DONE
    assert rewriter.usage is not None and rewriter.usage.total_tokens == 7


def test_raw_stream_keeps_everything() -> None:
    rewriter = StreamRewriter(drop_filter_events=False)
    assert rewriter.feed(FILTER_FIRST + TOKEN + DONE) == FILTER_FIRST + TOKEN + DONE


def test_completions_chunks_become_chat_chunks_with_role_first() -> None:
    rewriter = StreamRewriter(drop_filter_events=True, convert=CompletionEventsAsChat().convert)
    chunk = (
        b'data: {"choices":[{"text":"Hel","index":0,"finish_reason":null}],'
        b'"id":"cmpl-1","object":"text_completion","created":1,"model":"m"}\n\n'
    )
    chunk2 = chunk.replace(b'"Hel"', b'"lo"')
    out = rewriter.feed(FILTER_FIRST + chunk + chunk2 + DONE)
    first_event, second_event, done = [e for e in out.split(b"\n\n") if e]
    first, second = orjson.loads(first_event[6:]), orjson.loads(second_event[6:])
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"content": "Hel", "role": "assistant"}
    assert second["choices"][0]["delta"] == {"content": "lo"}
    assert done == b"data: [DONE]"


def test_filter_events_written_with_a_space_after_the_colon_are_recognised_too() -> None:
    spaced = b'data: {"choices": [], "id": "", "prompt_filter_results": [{"prompt_index": 0}]}\n\n'
    assert is_filter_only(spaced)
    rewriter = StreamRewriter(drop_filter_events=True)
    assert rewriter.feed(spaced + TOKEN) == TOKEN


def test_an_empty_id_elsewhere_than_the_events_own_is_not_a_filter_event() -> None:
    nested = b'data: {"choices":[{"delta":{"tool_calls":[{"id":""}]}}],"id":"chatcmpl-1"}\n\n'
    assert not is_filter_only(nested)
    assert not is_filter_only(b'data: "id":""\n\n')  # the marker, but not a JSON object
    assert not is_filter_only(b'data: ["id",""]\n\n')


def test_usage_is_read_from_any_event_and_the_last_one_wins() -> None:
    rewriter = StreamRewriter(drop_filter_events=False)
    rewriter.feed(USAGE)
    rewriter.feed(b'data: {"choices":[],"id":"x","note":"no \\"usage\\" here"}\n\n' + TOKEN)
    assert rewriter.usage is not None and rewriter.usage.total_tokens == 7


def test_the_unfinished_last_event_is_passed_on_as_is() -> None:
    rewriter = StreamRewriter(drop_filter_events=True, convert=CompletionEventsAsChat().convert)
    assert rewriter.feed(TOKEN + b'data: {"choices":[{"te') == TOKEN
    assert rewriter.finish() == b'data: {"choices":[{"te'


def test_forced_prompt_stream_passes_on_what_is_not_a_completion_chunk() -> None:
    rewriter = StreamRewriter(drop_filter_events=False, convert=CompletionEventsAsChat().convert)
    assert rewriter.feed(TOKEN + DONE) == TOKEN + DONE


def test_the_marker_outside_a_json_object_is_no_filter_event() -> None:
    assert not is_filter_only(b': a comment with "id":""\n\n')  # no data at all
    assert not is_filter_only(b'data: [{"id":""}]\n\n')  # JSON, but a list


def test_completions_streams_keep_their_chunks_unless_forced_prompt_converts_them() -> None:
    chunk = b'data: {"choices":[{"text":"Hi","index":0}],"id":"cmpl-1","object":"text_completion"}\n\n'
    rewriter = StreamRewriter(drop_filter_events=True)
    assert rewriter.feed(chunk + DONE) == chunk + DONE


NULL_USAGE_TOKEN = TOKEN.replace(b'"object":"chat.completion.chunk"', b'"object":"chat.completion.chunk","usage":null')


def test_usage_asked_for_the_caller_is_hidden_from_it() -> None:
    rewriter = StreamRewriter(drop_filter_events=True, hide_usage=True)
    out = rewriter.feed(FILTER_FIRST + NULL_USAGE_TOKEN + USAGE + DONE)
    assert out == b"data: " + orjson.dumps(orjson.loads(TOKEN[6:])) + b"\n\n" + DONE
    assert rewriter.counted_usage() == (rewriter.usage, False)
    assert rewriter.usage is not None and rewriter.usage.total_tokens == 7


def test_a_stream_cut_short_is_counted_by_estimate() -> None:
    rewriter = StreamRewriter(drop_filter_events=True, hide_usage=True, prompt=b"x" * 40)
    rewriter.feed(FILTER_FIRST + TOKEN + TOKEN + TOKEN)
    usage, estimated = rewriter.counted_usage()
    assert estimated and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 3, 13)


def test_no_estimate_when_usage_is_not_counted() -> None:
    rewriter = StreamRewriter(drop_filter_events=True)
    rewriter.feed(TOKEN)
    assert rewriter.counted_usage() == (None, False)


def test_hiding_usage_removes_it_from_every_chunk_and_drops_only_the_usage_chunk() -> None:
    """Raw mode keeps the filter event: its `"usage": null` goes, the event stays. A last chunk that carries
    choices and usage together keeps its choices."""
    filter_first = FILTER_FIRST.replace(b'"choices":[],', b'"choices":[],"usage":null,')
    last = (
        b'data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],'
        b'"id":"chatcmpl-1","usage":{"total_tokens":7}}\n\n'
    )
    rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
    out = rewriter.feed(filter_first + last + USAGE + DONE)
    events = [e for e in out.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    first, finish = (orjson.loads(e[6:]) for e in events[:-1])
    assert first == orjson.loads(FILTER_FIRST[6:])
    assert finish == {"choices": [{"delta": {}, "finish_reason": "stop", "index": 0}], "id": "chatcmpl-1"}


def test_hiding_usage_leaves_events_that_only_mention_it() -> None:
    comment = b': "usage" comes last\n\n'
    nested = b'data: {"choices":[{"delta":{"content":"x"},"index":0}],"id":"c","logprobs":{"usage":1}}\n\n'
    rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
    assert rewriter.feed(comment + nested + DONE) == comment + nested + DONE


def test_a_stream_without_usage_is_estimated_without_its_done_event() -> None:
    """An upstream that ignores stream_options ends on [DONE] with no usage: [DONE] is no token."""
    rewriter = StreamRewriter(drop_filter_events=True, prompt=b"x" * 40)
    rewriter.feed(FILTER_FIRST + TOKEN + TOKEN + DONE)
    assert rewriter.counted_usage() == (Usage(10, 2, 12), True)
    silent = StreamRewriter(drop_filter_events=True, prompt=b"x" * 40)
    silent.feed(DONE)
    assert silent.counted_usage() == (Usage(10, 0, 10), True)


def test_a_null_usage_as_the_last_key_is_cut_from_the_bytes_as_they_are() -> None:
    """Azure writes `"usage":null` last in every chunk once usage is asked for: it goes without re-encoding
    the chunk, whose other bytes (key order, spacing) stay as the upstream wrote them."""
    chunk = (
        b'data: {"choices":[{"delta":{"content":"Hi"},"index":0}],"id":"c-1", "object":"chunk","usage":null}\r\n\r\n'
    )
    rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
    assert rewriter.feed(chunk) == chunk.replace(b',"usage":null', b"")
    assert rewriter.usage is None


@given(st.text(), st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r"]), st.sampled_from([b"", b"\n", b'"usage"']))
def test_whatever_a_chunk_holds_hiding_its_null_usage_leaves_the_rest_as_it_was(
    content: str, end: bytes, inside: bytes
) -> None:
    """The null usage cut from the bytes (or, where they cannot be trusted, by reading the chunk): either way the
    caller gets the chunk's data as Azure sent it, less its usage, whatever the content's characters."""
    data = {"choices": [{"delta": {"content": content + inside.decode()}, "index": 0}], "id": "c-1", "usage": None}
    chunk = b"data: " + orjson.dumps(data) + end
    rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
    relayed = rewriter.feed(chunk) + rewriter.finish()
    assert relayed.endswith((end, b"\n\n"))
    del data["usage"]
    assert event_json(relayed) == data


def test_a_null_usage_written_otherwise_is_removed_by_reading_the_chunk() -> None:
    spaced = b'data: {"choices":[{"delta":{"content":"Hi"},"index":0}],"id":"c-1","usage": null}\n\n'
    first = b'data: {"usage":null,"choices":[{"delta":{"content":"Hi"},"index":0}],"id":"c-1"}\n\n'
    for chunk in (spaced, first):
        rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
        assert orjson.loads(rewriter.feed(chunk)[6:]) == {
            "choices": [{"delta": {"content": "Hi"}, "index": 0}],
            "id": "c-1",
        }


def test_the_usage_chunk_counts_whatever_pieces_it_comes_in() -> None:
    stream = FILTER_FIRST + TOKEN + USAGE.replace(b"data: ", b"data:", 1) + DONE
    for cut in range(len(stream)):
        for hide in (False, True):
            rewriter = StreamRewriter(drop_filter_events=True, hide_usage=hide, prompt=b"x" * 12)
            rewriter.feed(stream[:cut])
            rewriter.feed(stream[cut:])
            assert rewriter.counted_usage() == (Usage(5, 2, 7), False), cut


def test_only_a_chunks_own_usage_counts() -> None:
    """A `usage` nested in a chunk (a tool call's arguments are a string, but logprobs or an extension's object
    are not) is not the chunk's; a chunk's own usage counts, clamped like any answer's."""
    nested = b'data: {"choices":[{"delta":{},"index":0,"logprobs":{"usage":{"total_tokens":1}}}],"id":"c"}\n\n'
    huge = b'data: {"choices":[],"id":"c","usage":{"prompt_tokens":9223372036854775808,"total_tokens":-1}}\n\n'
    rewriter = StreamRewriter(drop_filter_events=False, prompt=b"x" * 12)
    rewriter.feed(nested)
    assert rewriter.usage is None
    rewriter.feed(huge + DONE)
    assert rewriter.counted_usage() == (Usage(10**9, None, None), False)
    lines = b'data: {"choices":[],\ndata: "usage":{"total_tokens":4}}\n\n'  # one chunk's JSON over two data lines
    split = StreamRewriter(drop_filter_events=False)
    split.feed(lines)
    assert split.usage == Usage(None, None, 4)


def test_a_null_usage_over_several_data_lines_is_removed_by_reading_the_chunk_into_one_line() -> None:
    """Only a chunk on one data line has its bytes cut; one whose JSON spans lines (LF or bare CR endings) is
    read and written again."""
    lf = b'data: {"id":"c-1","object":"chunk"\ndata: ,"usage":null}\n\n'
    cr = b'data: {"id":"c-1","object":"chunk"\rdata: ,"usage":null}\r\r'
    for chunk in (lf, cr):
        rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
        assert rewriter.feed(chunk) == b'data: {"id":"c-1","object":"chunk"}\n\n'


def test_an_event_whose_data_is_not_json_is_relayed_as_it_came_with_usage_hidden() -> None:
    for after in (b"X", b"\x0c"):  # a form feed is no JSON whitespace
        chunk = b'data: {"id":"c-1","object":"chunk","usage":null}' + after + b"\n\n"
        rewriter = StreamRewriter(drop_filter_events=False, hide_usage=True)
        assert rewriter.feed(chunk) == chunk


def test_an_event_nested_deeper_than_the_gateway_re_encodes_is_no_json_object() -> None:
    """orjson reads 200 levels; the gateway re-encodes no more than core/json_depth.py's limit (128)."""
    assert event_json(b'data: {"a":' + b"[" * 10 + b"]" * 10 + b"}\n\n") == {"a": [[[[[[[[[[]]]]]]]]]]}
    assert event_json(b'data: {"a":' + b"[" * 200 + b"]" * 200 + b"}\n\n") is None
