"""Data files: every problem is named with its file and line."""

from __future__ import annotations

import json

import pytest

from training.data import DataError, load_examples, load_job_data, split_eval

from .conftest import example


def write_lines(path, lines):
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


def test_good_file(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps(example(i)) for i in range(3)])
    examples = load_examples(path)
    assert len(examples) == 3 and examples.ids == ["ex-0", "ex-1", "ex-2"]
    assert examples.columns()["completion"][0] == [
        {"role": "assistant", "content": "The usual dose is 1 mg twice daily."}
    ]
    assert set(examples.columns()) == {"prompt", "completion"}  # id and extra keys are not trainer columns


def test_blank_lines_keep_line_numbers_and_ids_default_to_line(tmp_path):
    item = example(0)
    del item["id"]
    item["source"] = "feedback"  # extra keys are ignored
    path = write_lines(tmp_path / "train.jsonl", ["", json.dumps(item), "   "])
    assert load_examples(path).ids == ["line-2"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"completion": example(0)["completion"]}), "'prompt' is missing"),
        (json.dumps({"prompt": example(0)["prompt"]}), "'completion' is missing"),
        (json.dumps({**example(0), "prompt": []}), "'prompt' must be a non-empty list"),
        (json.dumps({**example(0), "prompt": "What is it?"}), "'prompt' must be a non-empty list"),
        (
            json.dumps({**example(0), "prompt": [{"role": "doctor", "content": "x"}]}),
            "prompt\\[0\\] has role 'doctor'",
        ),
        (json.dumps({**example(0), "prompt": [{"role": "user", "content": 5}]}), "needs a text 'content'"),
        (
            json.dumps({**example(0), "prompt": [{"role": "system", "content": "x"}]}),
            "must end with a user message",
        ),
        (
            json.dumps({**example(0), "completion": [{"role": "user", "content": "x"}]}),
            "completion\\[0\\] has role 'user'",
        ),
        (
            json.dumps({**example(0), "completion": [{"role": "assistant", "content": "  "}]}),
            "completion .* is empty",
        ),
        (json.dumps({**example(0), "id": ["x"]}), "'id' must be a string"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps(example(0)), json.dumps(example(1)), line])
    with pytest.raises(DataError, match=f"train.jsonl line 3: .*{message}"):
        load_examples(path)


def test_invalid_utf8_names_the_line(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps(example(0)), b'{"prompt": "\xff"}'])
    with pytest.raises(DataError, match="line 2: not valid UTF-8"):
        load_examples(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="train.jsonl is missing"):
        load_examples(tmp_path / "train.jsonl")
    (tmp_path / "train.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="train.jsonl has no examples"):
        load_examples(tmp_path / "train.jsonl")


def test_eval_split_is_deterministic_and_never_takes_everything(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps(example(i)) for i in range(20)])
    examples = load_examples(path)
    train, held = split_eval(examples, 0.1, seed=3)
    assert (len(train), len(held)) == (18, 2)
    assert not set(train.ids) & set(held.ids)
    assert split_eval(examples, 0.1, seed=3)[1].ids == held.ids
    assert split_eval(examples, 0.0, seed=3) == (examples, None)
    one = examples.subset([0])
    assert split_eval(one, 0.5, seed=3) == (one, None)
    assert len(split_eval(examples.subset([0, 1]), 0.9, seed=3)[0]) == 1


def test_job_data_prefers_eval_jsonl(tmp_path):
    (tmp_path / "data").mkdir()
    write_lines(tmp_path / "data" / "train.jsonl", [json.dumps(example(i)) for i in range(10)])
    train, held = load_job_data(tmp_path, 0.5, seed=0)
    assert (len(train), len(held)) == (5, 5)
    write_lines(tmp_path / "data" / "eval.jsonl", [json.dumps(example(9)), "oops"])
    with pytest.raises(DataError, match="eval.jsonl line 2"):
        load_job_data(tmp_path, 0.5, seed=0)
