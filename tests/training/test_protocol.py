"""The job event protocol: round trips, and a parser that never breaks on what a real stdout can hold."""

from __future__ import annotations

import io
import json
import math

import pytest

from training import protocol
from training.protocol import (
    Artifact,
    Event,
    EventStreamParser,
    Failed,
    Finished,
    Log,
    LogText,
    Metric,
    Progress,
    Started,
    emit,
    parse_line,
)

EXAMPLES: list[Event] = [
    Started(kind="hitl", total_steps=12, n_train=20, n_eval=2, device="cuda x1 (4-bit NF4, bf16 compute)"),
    Metric(step=3, epoch=0.25, loss=1.75, learning_rate=1e-4, grad_norm=0.5, tokens_per_s=812.5),
    Metric(step=4, epoch=0.5, eval_loss=1.5),
    Metric(step=5, loss=1.2, extra={"mean_token_accuracy": 0.61, "entropy": 2.0}),
    Progress(step=3, total=12, elapsed_s=4.5, eta_s=13.5),
    Progress(step=0, total=12, elapsed_s=0.0, eta_s=None),
    Log(level="warning", message="2 examples were longer than max_length — truncated ✓"),
    Artifact(name="adapter", path="/jobs/7/adapter"),
    Finished(adapter_path="/jobs/7/adapter", metrics={"train_loss": 1.1, "global_step": 12}, duration_s=61.2),
    Failed(reason="Out of GPU memory", advice="Lower per_device_train_batch_size."),
    Failed(reason="cancelled"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.EVENT)
def test_round_trip(event):
    line = event.to_line()
    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == event.EVENT and isinstance(data["time"], float)
    assert parse_line(line) == event
    assert parse_line(line + "\r\n") == event


def test_every_event_type_has_an_example():
    assert {e.EVENT for e in EXAMPLES} == set(protocol.EVENT_TYPES)


def test_metric_extra_values_are_written_flat():
    data = json.loads(Metric(step=1, loss=2.0, extra={"mean_token_accuracy": 0.5}).to_line())
    assert data["mean_token_accuracy"] == 0.5 and "extra" not in data


def test_nan_loss_survives():
    parsed = parse_line(Metric(step=1, loss=float("nan")).to_line())
    assert isinstance(parsed, Metric) and math.isnan(parsed.loss)


def test_integers_are_accepted_for_floats():
    parsed = parse_line('{"event": "metric", "time": 1, "step": 2, "loss": 3}')
    assert parsed == Metric(time=1.0, step=2, loss=3.0)
    assert isinstance(parsed.loss, float)


@pytest.mark.parametrize(
    "line",
    [
        "Loading checkpoint shards: 100%",
        "",
        "{",
        "[1, 2]",
        '"just a string"',
        '{"no_event": 1}',
        '{"event": "teleported", "time": 1}',
        '{"event": "metric", "time": 1}',  # step missing
        '{"event": "metric", "time": 1, "step": "three"}',  # wrong type
        '{"event": "metric", "time": 1, "step": true}',  # a bool is not a step
        '{"event": "progress", "step": 1, "total": null, "elapsed_s": 1}',
        '{"event": "failed", "reason": 42}',
        "[" * 100_000,  # deep nesting
    ],
)
def test_anything_else_is_log_text(line):
    parsed = parse_line(line)
    assert isinstance(parsed, LogText) and parsed.text == line


def test_unknown_fields_are_ignored_for_forward_compatibility():
    parsed = parse_line('{"event": "log", "time": 1, "level": "info", "message": "hi", "new_field": [1]}')
    assert parsed == Log(time=1.0, level="info", message="hi")


def test_emit_writes_one_flushed_line():
    out = io.StringIO()
    emit(Log(level="info", message="a\nb"), out)
    emit(Progress(step=1, total=2, elapsed_s=1.0), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and parse_line(lines[0]).message == "a\nb"


def test_only_rank_zero_emits(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("RANK", "1")
    emit(Log(level="info", message="from a worker"), out)
    assert out.getvalue() == ""
    monkeypatch.setenv("RANK", "0")
    emit(Log(level="info", message="from the main process"), out)
    assert out.getvalue()


# ------------------------------------------------------------------------------------- stream parser

RECORDED = (
    Started(kind="sft", total_steps=2, n_train=4, n_eval=0, device="cpu (float32)").to_line()
    + "\n"
    + "Some library printed this\n"
    + Metric(step=1, loss=2.0).to_line()
    + "\n\n"
    + "\x1b[32mcoloured junk\x1b[0m {not json}\n"
    + Progress(step=1, total=2, elapsed_s=0.5, eta_s=0.5).to_line()
    + "\n"
    + Finished(adapter_path="/x/adapter", metrics={}, duration_s=1.0).to_line()
    + "\n"
)


def kinds(items) -> list[str]:
    return [item.EVENT if isinstance(item, Event) else "text" for item in items]


def test_recorded_stream_in_one_chunk():
    parser = EventStreamParser()
    items = parser.feed(RECORDED.encode()) + parser.close()
    assert kinds(items) == ["started", "text", "metric", "text", "progress", "finished"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_items(size):
    data = RECORDED.encode()
    whole = EventStreamParser().feed(data)
    parser = EventStreamParser()
    items = []
    for i in range(0, len(data), size):
        items += parser.feed(data[i : i + size])
    assert items + parser.close() == whole


def test_str_chunks_work_too():
    parser = EventStreamParser()
    assert kinds(parser.feed(RECORDED[:50]) + parser.feed(RECORDED[50:])) == kinds(
        EventStreamParser().feed(RECORDED)
    )


def test_stream_cut_mid_line():
    line = Metric(step=7, loss=1.0).to_line()
    parser = EventStreamParser()
    assert parser.feed(line[:20]) == []  # nothing until the newline
    assert parser.feed(line[20:30]) == []
    tail = parser.close()  # the writer died: the half line is log text, not an event
    assert tail == [LogText(line[:30])]
    assert parser.close() == []


def test_crlf_line_endings():
    data = RECORDED.replace("\n", "\r\n").encode()
    assert kinds(EventStreamParser().feed(data)) == kinds(EventStreamParser().feed(RECORDED.encode()))
    texts = [i for i in EventStreamParser().feed(data) if isinstance(i, LogText)]
    assert texts[0].text == "Some library printed this"


def test_invalid_utf8_becomes_replacement_characters():
    parser = EventStreamParser()
    items = parser.feed(b"bad \xff\xfe bytes\n" + Log(level="info", message="ok").to_line().encode() + b"\n")
    assert items[0] == LogText("bad \ufffd\ufffd bytes")
    assert isinstance(items[1], Log)


def test_utf8_character_split_across_chunks():
    data = (Log(level="info", message="dosage µg — é").to_line() + "\n").encode()
    cut = data.index("µ".encode()) + 1  # inside the two-byte character
    parser = EventStreamParser()
    items = parser.feed(data[:cut]) + parser.feed(data[cut:])
    assert items == [parse_line(data.decode())]


def test_invalid_utf8_inside_an_event_keeps_the_event():
    raw = b'{"event": "log", "time": 1, "level": "info", "message": "caf\xe9"}\n'
    (item,) = EventStreamParser().feed(raw)
    assert isinstance(item, Log) and item.message == "caf\ufffd"


def test_huge_line_is_parsed():
    message = "x" * 3_000_000
    data = (Log(level="info", message=message).to_line() + "\n").encode()
    parser = EventStreamParser()
    items = []
    for i in range(0, len(data), 65536):
        items += parser.feed(data[i : i + 65536])
    assert len(items) == 1 and items[0].message == message


def test_line_over_the_limit_is_cut_and_the_stream_goes_on():
    parser = EventStreamParser(max_line_bytes=100)
    after = Progress(step=1, total=2, elapsed_s=1.0).to_line()
    items = parser.feed("y" * 250) + parser.feed("y" * 250 + "\n" + after + "\n")
    assert len(items) == 2
    assert isinstance(items[0], LogText) and items[0].text.startswith("y" * 100) and "cut" in items[0].text
    assert isinstance(items[1], Progress)
