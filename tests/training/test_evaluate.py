"""The evaluate program in-process on the tiny Llama: two versions (the base and a LoRA adapter) x three
questions (two multiple choice, one open with a reference). Answers equal plain greedy generation, cached
answers are reused and not generated again, rewards are the reward model's scores, bad input is named by line,
and a cancel writes nothing."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import statistics

import pytest

from training import protocol
from training.__main__ import main
from training.evaluate import ANSWERS_FILE, RESULTS_FILE, Question, prompt_messages

from .conftest import SYSTEM, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

QUESTIONS = [
    {
        "prompt_id": 11,
        "question": "Which drug is a loop diuretic?",
        "reference_answer": None,
        "answer_key": "B",
        "options": {"A": "Spironolactone", "B": "Furosemide", "C": "Mannitol"},
    },
    {
        "prompt_id": 12,
        "question": "Which drug is an anticoagulant given by injection?",
        "reference_answer": None,
        "answer_key": "b",
        "options": ["Aspirin", "Heparin"],
    },
    {
        "prompt_id": 13,
        "question": "How is acute pulmonary oedema treated first?",
        "reference_answer": "Sit the patient up, give oxygen and furosemide 40 mg IV.",
        "answer_key": None,
        "options": None,
    },
]


@pytest.fixture
def make_eval_job(tmp_path, tiny_model_dir, tiny_adapters):
    counter = iter(range(100))

    def make(questions=QUESTIONS, cached=(), **overrides):
        job_dir = tmp_path / f"job-{next(counter)}"
        (job_dir / "data").mkdir(parents=True)
        config = {
            "kind": "evaluate",
            "base_model": str(tiny_model_dir),
            "versions": [
                {"name": "base", "adapter_path": None},
                {"name": "B-iter-2", "adapter_path": str(tiny_adapters[0])},
            ],
            "reward_adapter": None,
            "max_new_tokens": 8,
            "system_prompt": SYSTEM,
            "batch_size": 2,
            "device": "cpu",
            "quantization": "auto",
            "seed": 0,
            **overrides,
        }
        (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        lines = [q if isinstance(q, str) else json.dumps(q) for q in questions]
        (job_dir / "data" / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        lines = [c if isinstance(c, str) else json.dumps(c) for c in cached]
        (job_dir / "data" / "cached.jsonl").write_text(
            "".join(line + "\n" for line in lines), encoding="utf-8"
        )
        return job_dir

    return make


def run_main(job_dir):
    out = io.StringIO()
    code = main(["evaluate", "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def read_rows(job_dir):
    return [json.loads(line) for line in (job_dir / ANSWERS_FILE).read_text().splitlines()]


def greedy(model, tokenizer, question: dict, max_new_tokens: int) -> str:
    """Plain transformers greedy generation of one question: what the program must reproduce."""
    import torch

    messages = prompt_messages(Question(**question), SYSTEM)
    enc = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=2, eos_token_id=2
        )
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_two_versions_answer_every_question_as_plain_greedy_generation(
    make_eval_job, tiny_model_dir, tiny_adapters
):
    job_dir = make_eval_job(batch_size=1)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events

    rows = read_rows(job_dir)
    assert [(r["version"], r["prompt_id"]) for r in rows] == [
        (v, p) for v in ("base", "B-iter-2") for p in (11, 12, 13)
    ]
    for r in rows:
        assert set(r) == {"version", "prompt_id", "text", "n_tokens", "finish_reason", "cached",
                          "parsed_option", "correct", "reward"}  # fmt: skip
        assert r["cached"] is False and r["reward"] is None
        assert 1 <= r["n_tokens"] <= 8 and r["finish_reason"] in ("stop", "length")
        assert (r["correct"] is None) == (r["prompt_id"] == 13)
        if r["parsed_option"] is None and r["correct"] is not None:
            assert r["correct"] is False  # unparsed counts as wrong

    # The base with adapters disabled, and the adapter version, give what plain transformers / peft give.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    expected = {("base", q["prompt_id"]): greedy(base, tokenizer, q, 8) for q in QUESTIONS}
    tuned = PeftModel.from_pretrained(base, str(tiny_adapters[0])).eval()
    expected |= {("B-iter-2", q["prompt_id"]): greedy(tuned, tokenizer, q, 8) for q in QUESTIONS}
    assert {(r["version"], r["prompt_id"]): r["text"] for r in rows} == expected
    assert any(expected[("base", p)] != expected[("B-iter-2", p)] for p in (11, 12, 13)), (
        "adapter not applied"
    )

    results = json.loads((job_dir / RESULTS_FILE).read_text())
    assert results["settings"] == {"max_new_tokens": 8, "temperature": 0, "system_prompt": SYSTEM, "seed": 0}
    for name in ("base", "B-iter-2"):
        mine = [r for r in rows if r["version"] == name]
        summary = results["versions"][name]
        assert (summary["n_questions"], summary["n_mcq"], summary["n_with_reference"]) == (3, 2, 1)
        assert summary["mcq_correct"] == sum(1 for r in mine if r["correct"])
        assert summary["mcq_unparsed"] == sum(1 for r in mine[:2] if r["parsed_option"] is None)
        assert summary["accuracy"] == summary["mcq_correct"] / 2
        assert 0 <= summary["rouge_l"] <= 1 and 0 <= summary["bleu"] <= 100
        assert summary["reward_mean"] is None
        assert summary["mean_length_tokens"] == pytest.approx(statistics.fmean(r["n_tokens"] for r in mine))
        assert (summary["n_generated"], summary["n_cached"]) == (3, 0)

    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.total_steps) == ("evaluate", 6)
    progress = [e for e in events if isinstance(e, protocol.Progress)]
    assert [(p.step, p.total) for p in progress] == [(i, 6) for i in range(1, 7)]
    finished = events[-1]
    assert isinstance(finished, protocol.Finished)
    assert finished.adapter_path == str(job_dir / RESULTS_FILE)
    assert {k: finished.metrics[k] for k in ("n_versions", "n_questions", "n_generated")} == {
        "n_versions": 2,
        "n_questions": 3,
        "n_generated": 6,
    }
    assert not list(job_dir.glob("*.tmp-*"))


def test_greedy_answers_are_deterministic_and_cached_ones_are_not_generated_again(make_eval_job):
    first = make_eval_job()
    assert run_main(first)[0] == protocol.EXIT_OK
    again = make_eval_job()
    assert run_main(again)[0] == protocol.EXIT_OK
    assert [r["text"] for r in read_rows(first)] == [r["text"] for r in read_rows(again)]

    # The base's answers come from the cache (one rewritten, to show it is used as it is, not regenerated).
    cached = [
        {k: r[k] for k in ("version", "prompt_id", "text", "n_tokens", "finish_reason")}
        for r in read_rows(first)
        if r["version"] == "base"
    ]
    cached[0] |= {"text": "The answer is B.", "n_tokens": 5}
    job_dir = make_eval_job(cached=cached + [{**cached[1], "version": "retired-version"}])
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    rows = read_rows(job_dir)
    assert [r["cached"] for r in rows] == [True] * 3 + [False] * 3
    assert rows[0]["text"] == "The answer is B." and rows[0]["parsed_option"] == "B" and rows[0]["correct"]
    assert [r["text"] for r in rows] == ["The answer is B."] + [r["text"] for r in read_rows(first)][1:]
    results = json.loads((job_dir / RESULTS_FILE).read_text())["versions"]
    assert (results["base"]["n_generated"], results["base"]["n_cached"]) == (0, 3)
    assert (results["B-iter-2"]["n_generated"], results["B-iter-2"]["n_cached"]) == (3, 0)
    assert results["base"]["mcq_correct"] >= 1
    assert [(p.step, p.total) for p in events if isinstance(p, protocol.Progress)] == [(1, 3), (2, 3), (3, 3)]
    assert events[-1].metrics["n_generated"] == 3

    # Everything cached: nothing generated, no model loaded for generation.
    everything = [{k: r[k] for k in cached[0]} for r in read_rows(first)]
    code, events = run_main(make_eval_job(cached=everything))
    assert code == protocol.EXIT_OK, events
    assert next(e for e in events if isinstance(e, protocol.Started)).total_steps == 0
    assert events[-1].metrics["n_generated"] == 0


def test_rewards_are_the_reward_models_scores(make_eval_job, tiny_model_dir, tiny_reward_adapter):
    from training.reward_score import score_texts

    job_dir = make_eval_job(reward_adapter=str(tiny_reward_adapter))
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    rows = read_rows(job_dir)
    assert all(isinstance(r["reward"], float) and math.isfinite(r["reward"]) for r in rows)
    by_id = {q["prompt_id"]: Question(**q) for q in QUESTIONS}
    conversations = [
        [*prompt_messages(by_id[r["prompt_id"]], SYSTEM), {"role": "assistant", "content": r["text"]}]
        for r in rows
    ]
    expected = score_texts(tiny_model_dir, tiny_reward_adapter, conversations)
    assert [r["reward"] for r in rows] == pytest.approx(expected, abs=1e-4)
    results = json.loads((job_dir / RESULTS_FILE).read_text())["versions"]
    for name in ("base", "B-iter-2"):
        mine = [r["reward"] for r in rows if r["version"] == name]
        assert results[name]["reward_mean"] == pytest.approx(statistics.fmean(mine))


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        ("{not json", "not valid JSON"),
        ({"question": "Why?"}, "'prompt_id' must be a whole number"),
        ({"prompt_id": 5, "question": "  "}, "'question' must be a non-empty text"),
        (
            {"prompt_id": 5, "question": "Q?", "options": ["x", "y"], "answer_key": "D"},
            "not one of the options",
        ),
        ({"prompt_id": 5, "question": "Q?", "options": "A. x B. y"}, "'options' must be"),
        ({"prompt_id": 11, "question": "Q?"}, "prompt_id 11 appears twice"),
    ],
)
def test_bad_questions_fail_naming_the_line(make_eval_job, bad_line, words):
    job_dir = make_eval_job(questions=[QUESTIONS[0], bad_line])
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED
    failed = events[-1]
    assert isinstance(failed, protocol.Failed)
    assert "questions.jsonl line 2" in failed.reason and words in failed.reason, failed.reason
    assert not (job_dir / ANSWERS_FILE).exists() and not (job_dir / RESULTS_FILE).exists()


def test_bad_cached_line_and_bad_config_fail_with_their_names(make_eval_job, tiny_reward_adapter):
    cached = {"version": "base", "prompt_id": 11, "text": "B", "n_tokens": "two", "finish_reason": "stop"}
    code, events = run_main(make_eval_job(cached=[cached]))
    assert code == protocol.EXIT_FAILED
    assert "cached.jsonl line 1" in events[-1].reason and "'n_tokens'" in events[-1].reason

    twice = [{"name": "base", "adapter_path": None}, {"name": "base", "adapter_path": None}]
    code, events = run_main(make_eval_job(versions=twice))
    assert code == protocol.EXIT_FAILED and "listed twice" in events[-1].reason

    reward_as_version = [{"name": "R", "adapter_path": str(tiny_reward_adapter)}]
    code, events = run_main(make_eval_job(versions=reward_as_version))
    assert code == protocol.EXIT_FAILED and "is a reward model, not a chat model" in events[-1].reason


def test_sigterm_during_generation_cancels_without_writing(make_eval_job, monkeypatch):
    import training.evaluate as evaluate

    original = evaluate.generate_batch
    calls = []

    def generate_then_signal(*args, **kwargs):
        calls.append(1)
        os.kill(os.getpid(), signal.SIGTERM)  # deferred: generation stops at the next token
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluate, "generate_batch", generate_then_signal)
    job_dir = make_eval_job()
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED and events[-1].cancelled
    assert len(calls) == 1
    assert not (job_dir / ANSWERS_FILE).exists() and not (job_dir / RESULTS_FILE).exists()
    assert not list(job_dir.glob("*.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"
