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
