from core.translation.sse import EventSplitter, event_data


def test_events_split_across_chunks_come_out_whole_and_unchanged() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'data: {"a":') == []
    assert splitter.feed(b'1}\n\ndata: {"b":2}\n\ndata: [DO') == [b'data: {"a":1}\n\n', b'data: {"b":2}\n\n']
    assert splitter.feed(b"NE]\n\n") == [b"data: [DONE]\n\n"]
    assert splitter.rest() == b""


def test_crlf_framing_and_named_events() -> None:
    splitter = EventSplitter()
    events = splitter.feed(b"event: thread.run.created\r\ndata: {}\r\n\r\ndata: x\n\n")
    assert events == [b"event: thread.run.created\r\ndata: {}\r\n\r\n", b"data: x\n\n"]


def test_unfinished_event_is_returned_by_rest() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: partial")
    assert splitter.rest() == b"data: partial"


def test_event_data_joins_data_lines() -> None:
    assert event_data(b"event: e\ndata: a\ndata: b\n\n") == b"a\nb"
    assert event_data(b": comment\n\n") is None


def test_nothing_after_done_is_an_event() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: a\n\nevent: done\ndata: [DONE]\n\ndata: late\n\n") == [
        b"data: a\n\n", b"event: done\ndata: [DONE]\n\n",
    ]  # fmt: skip
    assert splitter.done and splitter.events == 2
    assert splitter.feed(b"data: later\n\n") == [] and splitter.rest() == b""


def test_pending_counts_the_bytes_of_an_unfinished_event() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: a\n\ndata: unfinish")
    assert splitter.pending == len(b"data: unfinish") and splitter.events == 1


def test_bare_cr_framing_splits_events() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: a\r\rdata: b\r\r") == [b"data: a\r\r", b"data: b\r\r"]


def test_mixed_line_endings_end_an_event_at_any_blank_line() -> None:
    # A line ended by one kind, the blank line by another: every pairing the spec allows.
    stream = b"data: 1\r\n\ndata: 2\n\r\ndata: 3\n\rdata: 4\r\r\ndata: 5\r\n\r\n"
    assert EventSplitter().feed(stream) == [
        b"data: 1\r\n\n", b"data: 2\n\r\n", b"data: 3\n\r", b"data: 4\r\r\n", b"data: 5\r\n\r\n",
    ]  # fmt: skip


def test_crlf_is_one_line_ending_even_when_split_across_chunks() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"event: e\r") == []
    assert splitter.feed(b"\ndata: x\r") == []  # \r then \n is one line ending, not a blank line
    assert splitter.feed(b"\n\r") == [b"event: e\r\ndata: x\r\n\r"]
    assert splitter.feed(b"\ndata: y\r\n\r\n") == [b"\ndata: y\r\n\r\n"]  # the \n completes the last CRLF


def test_done_ends_a_cr_framed_stream() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: a\r\rdata: [DONE]\r\rdata: late\r\r") == [b"data: a\r\r", b"data: [DONE]\r\r"]
    assert splitter.done and event_data(b"event: e\rdata: a\rdata: b\r\r") == b"a\nb"


def test_every_split_of_a_mixed_stream_gives_the_same_events() -> None:
    stream = b"event: e\r\ndata: 1\r\n\r\ndata: 2\r\rdata: 3\n\n: note\r\n\ndata: 4\n\r\n"
    whole = EventSplitter().feed(stream)
    assert len(whole) == 5 and b"".join(whole) == stream
    for cut in range(1, len(stream)):
        splitter = EventSplitter()
        events = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:])
        assert [event_data(e) for e in events] == [event_data(e) for e in whole], cut
        assert b"".join(events) + splitter.rest() == stream


def test_a_fresh_splitter_has_nothing_pending_and_rest_empties_the_buffer() -> None:
    splitter = EventSplitter()
    assert splitter.pending == 0 and splitter.rest() == b"" and splitter.events == 0
    splitter.feed(b"data: part")
    assert splitter.rest() == b"data: part"
    assert splitter.pending == 0 and splitter.rest() == b""  # handed out once


def test_events_are_counted_across_chunks() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: 1\n\ndata: 2\n\n")
    splitter.feed(b"data: 3\n\n")
    assert splitter.events == 3


def test_done_mentioned_inside_an_event_does_not_end_the_stream() -> None:
    splitter = EventSplitter()
    event = b'data: {"choices":[{"delta":{"content":"[DONE]"}}]}\n\n'
    assert splitter.feed(event + b"data: next\n\n") == [event, b"data: next\n\n"]
    assert not splitter.done


def test_event_data_without_a_space_after_the_colon_and_with_a_payload_starting_with_x() -> None:
    assert event_data(b"data:[DONE]\n\n") == b"[DONE]"
    assert event_data(b"data: XX\n\n") == b"XX"
