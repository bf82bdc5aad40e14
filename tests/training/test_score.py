"""The score program in-process on the tiny Llama with a random reward adapter: one finite score per answer,
the same scores as training/reward_score.py, progress per batch, atomic output, bad data named by line."""

from __future__ import annotations

import io
import json
import math
import os
import signal

import pytest

from training import protocol
from training.__main__ import main
from training.reward_score import score_texts
from training.score import SCORES_FILE

from .conftest import SYSTEM, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def answer(i: int, generation_id: int | None = None) -> dict:
    return {
        "generation_id": 100 + i if generation_id is None else generation_id,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What is the usual adult dose of drug {i}?"},
            {"role": "assistant", "content": f"Take {i + 1} mg twice daily" + " with food" * i + "."},
        ],
    }


@pytest.fixture
def make_score_job(tmp_path, tiny_model_dir, tiny_reward_adapter):
    def make(lines: list, **overrides):
        job_dir = tmp_path / "job"
        (job_dir / "data").mkdir(parents=True)
        config = {
            "kind": "score",
            "base_model": str(tiny_model_dir),
            "reward_adapter": str(tiny_reward_adapter),
            "batch_size": 2,
            "device": "cpu",
            **overrides,
        }
        (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
        (job_dir / "data" / "answers.jsonl").write_text(text, encoding="utf-8")
        return job_dir

    return make


def run_main(job_dir):
    out = io.StringIO()
    code = main(["score", "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def test_scores_every_answer_as_reward_score_does(make_score_job, tiny_model_dir, tiny_reward_adapter):
    answers = [answer(i) for i in range(5)]
    job_dir = make_score_job(answers)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events

    rows = [json.loads(line) for line in (job_dir / SCORES_FILE).read_text().splitlines()]
    assert [r["generation_id"] for r in rows] == [100, 101, 102, 103, 104]
    assert all(math.isfinite(r["score"]) for r in rows)
    assert len({round(r["score"], 6) for r in rows}) > 1, "different answers should score differently"
    # Batched and padded here, one by one there: the same numbers.
    expected = score_texts(tiny_model_dir, tiny_reward_adapter, [a["messages"] for a in answers])
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-4)

    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.total_steps, started.n_train) == ("score", 3, 5)
    progress = [e for e in events if isinstance(e, protocol.Progress)]
    assert [(p.step, p.total) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    finished = events[-1]
    assert isinstance(finished, protocol.Finished)
    assert finished.adapter_path == str(job_dir / SCORES_FILE)
    assert finished.metrics["n_scored"] == 5 and finished.metrics["n_skipped"] == 0
    assert finished.metrics["mean_score"] == pytest.approx(sum(expected) / 5, abs=1e-4)
    assert not list(job_dir.glob("*.tmp-*"))


def test_answers_over_max_length_are_left_unscored(make_score_job):
    job_dir = make_score_job([answer(0), answer(40)], max_length=60)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    rows = [json.loads(line) for line in (job_dir / SCORES_FILE).read_text().splitlines()]
    assert [r["generation_id"] for r in rows] == [100]
    assert events[-1].metrics["n_skipped"] == 1
    assert any(isinstance(e, protocol.Log) and "unscored" in e.message for e in events)


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        ("{not json", "not valid JSON"),
        ({"messages": answer(1)["messages"]}, "'generation_id' must be a whole number"),
        ({"generation_id": 5, "messages": answer(1)["messages"][:2]}, "end with a user message"),
        ({"generation_id": 5, "messages": [{"role": "doctor", "content": "x"}]}, "role 'doctor'"),
    ],
)
def test_bad_data_fails_naming_the_line(make_score_job, bad_line, words):
    job_dir = make_score_job([answer(0), bad_line])
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED
    failed = events[-1]
    assert isinstance(failed, protocol.Failed)
    assert "answers.jsonl line 2" in failed.reason and words in failed.reason
    assert not (job_dir / SCORES_FILE).exists()


def test_a_chat_adapter_is_refused_as_reward_model(make_score_job, tiny_adapters):
    job_dir = make_score_job([answer(0)], reward_adapter=str(tiny_adapters[0]))
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED
    assert "not a reward adapter" in events[-1].reason


def test_sigterm_between_batches_cancels_without_a_scores_file(make_score_job, monkeypatch):
    import training.reward_score as reward_score

    original = reward_score.score_conversations
    calls = []

    def score_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # deferred: noted, acted on after this batch
        return original(*args, **kwargs)

    monkeypatch.setattr(reward_score, "score_conversations", score_then_signal)
    job_dir = make_score_job([answer(i) for i in range(6)])
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED and events[-1].cancelled
    assert len(calls) == 1 and not (job_dir / SCORES_FILE).exists() and not list(job_dir.glob("*.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"
