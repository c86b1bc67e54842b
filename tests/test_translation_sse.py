import re

from hypothesis import given
from hypothesis import strategies as st

from core.translation.sse import EventSplitter, event_data

# The spec's blank line, stated on its own: two line endings in a row (LF LF, LF CR, CR CR; a CR LF pair is one).
_BLANK = re.compile(rb"\n[\r\n]|\r\r")


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


@given(st.lists(st.sampled_from([b"data: x", b"data: y", b"\n", b"\r", b"\r\n", b": c", b"event: e"]), max_size=30))
def test_events_end_where_the_specs_blank_lines_say_whatever_the_line_endings(pieces: list[bytes]) -> None:
    """The LF-only fast path and the general search agree: each event ends at the stream's first blank line after
    it begins (LF LF, LF CR, CR CR, or a CRLF pair), with a CRLF blank line taken whole."""
    stream = b"".join(pieces)
    events = EventSplitter().feed(stream)
    start = 0
    for event in events:
        blank = _BLANK.search(stream, start)
        assert blank is not None
        end = blank.end() + (1 if stream[blank.end() - 1 : blank.end() + 1] == b"\r\n" else 0)
        assert event == stream[start:end]
        start = end
    assert _BLANK.search(stream, start) is None


def test_a_stream_that_ended_before_any_byte_leaves_nothing_pending() -> None:
    splitter = EventSplitter()
    assert splitter.pending == 0 and splitter.rest() == b""


def test_done_inside_an_answer_does_not_end_the_stream() -> None:
    splitter = EventSplitter()
    quoting = b'data: {"choices":[{"delta":{"content":"[DONE]"}}]}\n\n'
    assert splitter.feed(quoting + b"data: more\n\n") == [quoting, b"data: more\n\n"]
    assert not splitter.done


def test_events_are_counted_over_every_chunk() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: a\n\ndata: b\n\n")
    splitter.feed(b"data: c\n\n")
    assert splitter.events == 3


def test_rest_takes_the_unfinished_event_once() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: partial")
    assert splitter.rest() == b"data: partial"
    assert splitter.rest() == b"" and splitter.pending == 0


def test_event_data_reads_values_with_or_without_a_space_after_the_colon() -> None:
    assert event_data(b"data:XY\n\n") == b"XY"
    assert event_data(b"data: XY\ndata:Z\n\n") == b"XY\nZ"
    assert event_data(b"data:\tXY\n\n") == b"\tXY"  # only a space is the separator's; a tab is the value's
