"""Evaluation in the `ppo` program on the tiny Llama: the held-back split, the greedy evaluation (exact KL,
reward scores, no random numbers drawn), evaluation events on schedule, checkpoints judged by them, and early
stopping."""

from __future__ import annotations

import io
import json
import math
from contextlib import nullcontext

import pytest
import torch

from training import protocol
from training.__main__ import main
from training.checkpoints import find_best_and_last, list_checkpoints
from training.config import ConfigError, config_from_dict
from training.ppo.config import PPOJobConfig
from training.ppo.evaluation import EarlyStopping, EvalStats, Evaluator, from_file, hold_back

from .conftest import example, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

EVAL_KEYS = ("eval_reward_mean", "eval_kl", "eval_answer_length")


def run_main(job_dir):
    out = io.StringIO()
    code = main(["ppo", "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def evaluations(events) -> list[protocol.Metric]:
    return [m for m in of(events, protocol.Metric) if "eval_reward_mean" in m.extra]


def test_config_fields_are_validated():
    base = {"kind": "ppo", "base_model": "/m", "reward_adapter": "/r"}
    config = config_from_dict(base)
    assert (config.eval_prompts, config.eval_every, config.early_stopping_patience) == (8, 5, 0)
    with pytest.raises(ConfigError, match="'eval_prompts' must be 0 or more"):
        config_from_dict({**base, "eval_prompts": -1})
    with pytest.raises(ConfigError, match="'early_stopping_patience' needs evaluation"):
        config_from_dict({**base, "eval_every": 0, "early_stopping_patience": 2})
    with pytest.raises(ConfigError, match="'eval_every'"):
        config_from_dict({**base, "eval_every": "often"})


def test_hold_back_is_a_seeded_disjoint_split_or_none_with_a_reason():
    prompts = list(range(20))  # hold_back only shuffles and splits; any items do
    config = PPOJobConfig(eval_prompts=5, seed=1)
    split = hold_back(prompts, config)
    assert len(split.eval) == 5 and len(split.train) == 15 and sorted(split.train + split.eval) == prompts
    assert hold_back(prompts, config) == split  # the same on every run (and on resume)
    assert hold_back(prompts, PPOJobConfig(eval_prompts=5, seed=2)).eval != split.eval
    few = hold_back(list(range(9)), config)
    assert few.eval == [] and few.train == list(range(9)) and "9 prompts are too few" in few.note
    assert hold_back(prompts, PPOJobConfig(eval_every=0)).eval == []
    # data/eval_prompts.jsonl: its prompts that fit, whatever their number; training keeps every prompt.
    given = from_file(prompts, [100, 101], 1, config)
    assert (given.train, given.eval) == (prompts, [100, 101]) and "(1 longer than" in given.note
    assert "every prompt of data/eval_prompts.jsonl is longer" in from_file(prompts, [], 3, config).note
    assert from_file(prompts, [100], 0, PPOJobConfig(eval_every=0)).eval == []


def test_early_stopping_counts_evaluations_without_improvement():
    early = EarlyStopping(patience=2)
    assert [early.update(step, v) for step, v in enumerate([0.1, 0.5, 0.5, 0.7, 0.6, 0.2], 1)] == [
        False, False, False, False, False, True,
    ]  # fmt: skip
    assert (early.best_value, early.best_step, early.since_best) == (0.7, 4, 2)
    assert "has not improved for 2 evaluations; best 0.7 at step 4" in early.sentence(6)
    tie = EarlyStopping(patience=1)
    assert [tie.update(1, 0.3), tie.update(2, 0.3)] == [False, True]  # a tie is no improvement...
    assert tie.best_step == 2  # ...but the later step is the best, as training.checkpoints.best_and_last says
    never = EarlyStopping(patience=0)
    assert not any(never.update(step, -step) for step in range(1, 10))


@pytest.fixture
def tiny_models(tiny_model_dir, tiny_reward_adapter):
    from training.lora import choose_device, load_tokenizer
    from training.ppo.model import load_models
    from training.ppo.rollout import tokenize_prompts

    config = PPOJobConfig(
        base_model=str(tiny_model_dir),
        reward_adapter=str(tiny_reward_adapter),
        max_new_tokens=6,
        forward_batch_size=2,
        device="cpu",
        quantization="none",
    )
    torch.manual_seed(0)
    models = load_models(config, choose_device("cpu", "none"))
    tokenizer = load_tokenizer(config.base_model)
    raw = [(f"p-{i}", example(i)["prompt"]) for i in range(3)]
    prompts, _ = tokenize_prompts(tokenizer, raw, config.max_prompt_length)
    return config, models, tokenizer, prompts


def test_greedy_evaluation_is_repeatable_draws_no_random_numbers_and_scores_its_answers(tiny_models):
    from training.cancel import CancelToken
    from training.ppo.rollout import reward_inputs, sample_answers

    config, models, tokenizer, prompts = tiny_models
    evaluator = Evaluator(models, tokenizer, config, prompts, CancelToken())
    rng = torch.get_rng_state()
    first = evaluator.run()
    assert torch.equal(torch.get_rng_state(), rng)
    second = evaluator.run()
    assert [getattr(first, k) for k in EVAL_KEYS] == [getattr(second, k) for k in EVAL_KEYS]
    assert first.eval_kl == pytest.approx(0.0, abs=1e-6)  # a fresh LoRA (B = 0) is the reference
    assert 1 <= first.eval_answer_length <= config.max_new_tokens

    answers = sample_answers(models, tokenizer, prompts, 6, 1.0, CancelToken(), greedy=True)
    ids, mask = reward_inputs(tokenizer, answers)
    assert first.eval_reward_mean == pytest.approx(float(models.scores(ids, mask).mean()), abs=1e-5)

    with torch.no_grad():  # move the policy away from the reference
        for name, param in models.peft.named_parameters():
            if ".default." in name and "lora_B" in name:
                param.normal_(0, 0.5)
    assert evaluator.run().eval_kl > 1e-3


def test_answer_kl_is_the_exact_kl_over_the_vocabulary(tiny_models):
    from training.ppo.rollout import collate

    config, models, tokenizer, prompts = tiny_models
    with torch.no_grad():
        for name, param in models.peft.named_parameters():
            if ".default." in name and "lora_B" in name:
                param.normal_(0, 0.5)
    answers = [torch.tensor([5, 6, 7]), torch.tensor([8])]  # different lengths: padding is masked
    batch = collate([p.ids for p in prompts[:2]], answers, tokenizer.pad_token_id)
    kl = models.answer_kl(batch.input_ids, batch.attention_mask, batch.prompt_len, 1.0)
    assert kl.shape == batch.answer_mask.shape

    def log_probs(disable: bool) -> torch.Tensor:
        model = models.peft
        with torch.no_grad(), model.disable_adapter() if disable else nullcontext():
            position_ids = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                batch.input_ids, attention_mask=batch.attention_mask, position_ids=position_ids
            ).logits
        return torch.log_softmax(logits[:, batch.prompt_len - 1 : -1].float(), -1)

    p, q = log_probs(False), log_probs(True)
    expected = (p.exp() * (p - q)).sum(-1)
    mask = batch.answer_mask.bool()
    torch.testing.assert_close(kl[mask], expected[mask], rtol=1e-4, atol=1e-6)
    assert (kl[mask] > 0).all()


def test_evaluations_on_schedule_judge_the_checkpoints(make_ppo_job):
    job_dir = make_ppo_job(
        n_prompts=10, eval_prompts=3, eval_every=2, max_steps=3, checkpoint_every=10, learning_rate=1e-3
    )
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]
    (started,) = of(events, protocol.Started)
    assert (started.n_train, started.n_eval) == (7, 3)
    assert any("Evaluating on 3 prompts held back from 10" in e.message for e in of(events, protocol.Log))
    evals = evaluations(events)
    assert [m.step for m in evals] == [2, 3]  # every 2 steps and after the last
    for m in evals:
        assert m.loss is None and all(math.isfinite(m.extra[k]) for k in EVAL_KEYS)
        assert m.extra["eval_kl"] >= 0 and 1 <= m.extra["eval_answer_length"] <= 8
    assert evals[1].extra["eval_kl"] > 0  # the policy has moved from the reference

    # A checkpoint at each evaluation (checkpoint_every is larger), judged by that evaluation; the best and
    # the last kept.
    written = [e.path for e in of(events, protocol.Artifact) if e.name == "checkpoint"]
    assert [path.rsplit("-", 1)[1] for path in written] == ["2", "3"]
    by_step = {m.step: m.extra["eval_reward_mean"] for m in evals}
    kept = list_checkpoints(job_dir)
    assert [c.step for c in kept] == ([2, 3] if by_step[2] > by_step[3] else [3])
    for checkpoint in kept:
        assert (checkpoint.metric, checkpoint.higher_is_better) == ("eval_reward_mean", True)
        assert checkpoint.value == pytest.approx(by_step[checkpoint.step])
        assert checkpoint.metrics["reward_mean"] is not None  # the step's training numbers too
        assert {"adapter_config.json", "adapter_model.safetensors", "value_head.safetensors"} <= {
            p.name for p in checkpoint.path.iterdir()
        }
    best, last = find_best_and_last(job_dir)
    assert best.value == max(m.extra["eval_reward_mean"] for m in evals) and last.step == 3
    result = json.loads((job_dir / "result.json").read_text())
    assert result["checkpoints"]["best"] == {
        "path": str(best.path), "step": best.step, "metric": "eval_reward_mean", "value": best.value,
    }  # fmt: skip
    metrics = result["metrics"]
    assert metrics["eval_reward_mean"] == evals[-1].extra["eval_reward_mean"]
    assert (metrics["best_eval_reward_mean"], metrics["best_eval_step"]) == (best.value, best.step)
    assert (metrics["n_prompts"], metrics["n_eval_prompts"], metrics["stopped_early"]) == (7, 3, False)


def test_eval_prompts_file_is_used_whole_and_training_keeps_every_prompt(make_ppo_job):
    job_dir = make_ppo_job(n_prompts=4, max_steps=1, eval_every=1)
    lines = [json.dumps({"id": f"e-{i}", "prompt": example(50 + i)["prompt"]}) for i in range(3)]
    (job_dir / "data" / "eval_prompts.jsonl").write_text("\n".join(lines) + "\n")
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]
    (started,) = of(events, protocol.Started)
    assert (started.n_train, started.n_eval) == (4, 3)
    assert [m.step for m in evaluations(events)] == [1]
    assert "Evaluating on 3 prompts of data/eval_prompts.jsonl." in [
        e.message for e in of(events, protocol.Log)
    ]

    bad = make_ppo_job(name="bad", n_prompts=4, max_steps=1)
    (bad / "data" / "eval_prompts.jsonl").write_text('{"prompt": "not a list"}\n')
    code, events = run_main(bad)
    assert code == protocol.EXIT_FAILED and "eval_prompts.jsonl line 1" in events[-1].reason


def test_early_stopping_stops_and_the_best_checkpoint_is_kept(make_ppo_job, monkeypatch):
    scripted = iter([0.1, 0.5, 0.3, 0.2, 0.9, 1.0])

    def run(self):
        return EvalStats(eval_reward_mean=next(scripted), eval_kl=0.0, eval_answer_length=1.0, eval_s=0.0)

    monkeypatch.setattr(Evaluator, "run", run)
    job_dir = make_ppo_job(
        n_prompts=6,
        eval_prompts=2,
        eval_every=1,
        early_stopping_patience=2,
        max_steps=10,
        checkpoint_every=10,
    )
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]
    assert [p.step for p in of(events, protocol.Progress)] == [1, 2, 3, 4]
    sentence = (
        "Stopped early at step 4: eval_reward_mean has not improved for 2 evaluations; best 0.5 at step 2."
    )
    assert sentence in [e.message for e in of(events, protocol.Log)]
    assert [m.step for m in of(events, protocol.Metric) if m.extra.get("stopped_early")] == [4]
    best, last = find_best_and_last(job_dir)
    assert (best.step, best.value, last.step) == (2, 0.5, 4)
    assert [c.step for c in list_checkpoints(job_dir)] == [2, 4]  # pruned to the best and the last
    metrics = json.loads((job_dir / "result.json").read_text())["metrics"]
    assert metrics["stopped_early"] is True and metrics["global_step"] == 4
    assert (job_dir / "adapter" / "adapter_model.safetensors").is_file()
