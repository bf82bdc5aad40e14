"""The 4-bit path without a GPU: every training program on the tiny Llama forced to ``quantization="4bit"`` on the
CPU, where bitsandbytes' CPU backend loads NF4 with double quantisation and trains a LoRA on it (QLoRA).

Each program runs for two optimiser steps through ``python -m training <kind>`` (``main``) while two spies watch
the shared loader: what ``from_pretrained`` was given (the BitsAndBytesConfig and ``device_map={"": "cpu"}``) and
the base model it returned (after ``prepare_model_for_kbit_training``), so the tests can show that the
projections really are bitsandbytes ``Linear4bit`` layers holding NF4 ``Params4bit`` with double quantisation,
that no base weight moved, and that the LoRA (and a reward model's unquantised score head) did.

The reward job's adapter, trained on the 4-bit base, is shared by the module: the ``score`` program (which never
quantises: a reward model's scores are compared across answers) and the 4-bit ``ppo`` program use it.
"""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.evaluate import ANSWERS_FILE

from .conftest import SYSTEM, example, pair, parse_events, write_job

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (the dev extra brings it)")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
N_PROJECTIONS = 2 * len(PROJECTIONS)  # the tiny Llama has two layers
TWO_STEPS = {
    "max_steps": 2,
    "max_length": 64,
    "per_device_train_batch_size": 2,
    "per_device_eval_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "eval_fraction": 0.0,
    "device": "cpu",
    "quantization": "4bit",
}


class LoaderSpy:
    """Records every from_pretrained of the shared loader (its arguments and model) and, for the training
    programs, the base model lora.load_base_model hands back, with a copy of every parameter at that moment."""

    def __init__(self, monkeypatch):
        import training.lora
        import training.model_check
        import training.ppo.model

        self.loads: list[tuple[str, dict, object]] = []  # (auto class, kwargs, model)
        self.bases: list[tuple[object, list[tuple[torch.nn.Parameter, torch.Tensor]]]] = []
        real_load, real_base = training.model_check.from_pretrained_checked, training.lora.load_base_model

        def from_pretrained_checked(auto_class, folder, **kwargs):
            model = real_load(auto_class, folder, **kwargs)
            self.loads.append((auto_class.__name__, kwargs, model))
            return model

        def load_base_model(*args, **kwargs):
            model = real_base(*args, **kwargs)
            self.bases.append((model, [(p, p.detach().clone()) for p in model.parameters()]))
            return model

        monkeypatch.setattr(training.model_check, "from_pretrained_checked", from_pretrained_checked)
        monkeypatch.setattr(training.lora, "load_base_model", load_base_model)
        monkeypatch.setattr(training.ppo.model, "load_base_model", load_base_model)


def run_main(kind: str, job_dir) -> tuple[int, list]:
    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def double_quantised(weight) -> bool:
    """The weight's absmax scales are quantised again (nested). On a CPU with AVX512-BF16, bitsandbytes repacks a
    Linear4bit for its CPU kernel at the first no-grad forward in eval mode (inference): the scales are then
    plain and ``original_nested`` remembers (the state dict is packed back on saving)."""
    state = weight.quant_state
    if getattr(state, "packing_format_for_cpu", False):
        return bool(getattr(state, "original_nested", False))
    return bool(state.nested)


def assert_nf4_on_the_cpu(kwargs: dict, model) -> None:
    """from_pretrained was asked for NF4 + double quantisation on the CPU, and the model holds exactly that."""
    quant = kwargs["quantization_config"]
    assert kwargs["device_map"] == {"": "cpu"}
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
    assert quant.bnb_4bit_compute_dtype == torch.float32  # training on the CPU computes in fp32
    assert getattr(model, "is_loaded_in_4bit", False)
    # peft, once it wraps the model, keeps each projection as its base_layer
    quantised = {
        n.removesuffix(".base_layer"): m for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)
    }
    assert len(quantised) == N_PROJECTIONS and all(n.rsplit(".", 1)[-1] in PROJECTIONS for n in quantised)
    for layer in quantised.values():
        weight = layer.weight
        assert isinstance(weight, bnb.nn.Params4bit) and weight.dtype == torch.uint8
        assert weight.quant_type == "nf4" and double_quantised(weight), "NF4 with double quantisation"
        assert layer.compute_dtype == torch.float32
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {b.device.type for b in model.buffers()} <= {"cpu"}


def assert_base_unchanged(spy: LoaderSpy) -> None:
    """Every parameter of the loaded base (4-bit weights, embeddings, norms, a fresh score head) is as loaded."""
    (_, snapshot), *_ = spy.bases
    assert any(isinstance(p, bnb.nn.Params4bit) for p, _ in snapshot)
    moved = [p.shape for p, before in snapshot if not torch.equal(p.detach(), before)]
    assert not moved, f"base parameters changed in training: {moved[:3]}"
    assert not any(p.requires_grad for p, _ in snapshot), "the 4-bit base must be frozen"


def assert_lora_trained(adapter_dir, trained_b_keys: int = N_PROJECTIONS) -> dict[str, torch.Tensor]:
    """The saved adapter's LoRA B matrices (zero when fresh) moved: backward reached them through the 4-bit
    layers with non-zero gradients."""
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    b = {k: v for k, v in weights.items() if "lora_B" in k}
    assert len(b) == trained_b_keys and all(torch.isfinite(v).all() for v in weights.values())
    # TRL casts a quantised model's adapters to bf16 for bf16 autocast; without it (the CPU) they train in fp32
    assert {v.dtype for v in weights.values()} == {torch.float32}
    assert all(v.abs().sum() > 0 for v in b.values()), "every LoRA B must have moved from zero"
    return weights


def finished(events: list) -> protocol.Finished:
    assert isinstance(events[-1], protocol.Finished), events[-3:]
    losses = [e.loss for e in events if isinstance(e, protocol.Metric) and e.loss is not None]
    assert losses and all(math.isfinite(loss) for loss in losses)
    return events[-1]


def pair_job(job_dir, kind: str, **overrides):
    config = {"kind": kind, "parent_adapter": None, "output_name": "adapter", **TWO_STEPS, **overrides}
    (job_dir / "data").mkdir(parents=True)
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    lines = [json.dumps(pair(i)) for i in range(6)]
    (job_dir / "data" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return job_dir


# ------------------------------------------------------------------ the training model itself


def test_an_inference_forward_leaves_the_4bit_training_model_differentiable(tiny_model_dir):
    """An evaluation or PPO rollout runs the training model in eval mode without gradients; on a CPU with
    AVX512-BF16 bitsandbytes would then repack its layers for an inference-only kernel (no autograd: most LoRA
    gradients silently zero). lora.load_base_model keeps them unpacked: the gradients after such a forward are
    the gradients before it, and none is zero."""
    from peft import LoraConfig, get_peft_model

    from training.lora import load_base_model
    from training.model_loading import LoadPlan

    torch.manual_seed(0)
    plan = LoadPlan("cpu", "float32", "nf4")
    base = load_base_model(tiny_model_dir, plan, gradient_checkpointing=True)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=list(PROJECTIONS)))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)  # non-zero B: gradients flow to A and through every layer
    ids = torch.tensor([[1, 5, 6, 7, 8, 9, 10, 11]])

    def lora_grads() -> dict[str, torch.Tensor]:
        model.train()
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    before = lora_grads()
    assert len(before) == 2 * N_PROJECTIONS and all(g.abs().sum() > 0 for g in before.values())
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # what an evaluation or a rollout does
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)
    after = lora_grads()
    for name, grad in before.items():
        torch.testing.assert_close(after[name], grad, rtol=1e-3, atol=1e-5, msg=name)


# ------------------------------------------------------------------ sft, hitl, dpo


@pytest.mark.parametrize("kind", ["sft", "hitl"])
def test_sft_and_hitl_train_a_lora_on_the_4bit_base(kind, tmp_path, tiny_model_dir, monkeypatch):
    spy = LoaderSpy(monkeypatch)
    config = {
        "kind": kind,
        "base_model": str(tiny_model_dir),
        "parent_adapter": None,
        "output_name": "adapter",
    }
    if (
        kind == "hitl"
    ):  # with an evaluation after the first step: eval mode, no gradients, then training again
        config.update(eval_steps=1)
    job_dir = write_job(
        tmp_path / kind, {**config, **TWO_STEPS}, n_examples=4, eval_examples=2 * (kind == "hitl")
    )
    code, events = run_main(kind, job_dir)
    assert code == protocol.EXIT_OK, events
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert "4-bit NF4" in started.device, started.device
    assert finished(events).metrics["global_step"] == 2
    ((auto_class, kwargs, model),) = spy.loads
    assert auto_class == "AutoModelForCausalLM"
    assert_nf4_on_the_cpu(kwargs, model)
    assert_base_unchanged(spy)
    assert_lora_trained(job_dir / "adapter")


def test_dpo_trains_a_lora_on_the_4bit_base_against_the_base_as_reference(
    tmp_path, tiny_model_dir, monkeypatch
):
    spy = LoaderSpy(monkeypatch)
    job_dir = pair_job(tmp_path / "dpo", "dpo", base_model=str(tiny_model_dir))
    code, events = run_main("dpo", job_dir)
    assert code == protocol.EXIT_OK, events
    assert finished(events).metrics["global_step"] == 2
    ((_, kwargs, model),) = spy.loads  # one base: the reference is it with the adapter disabled
    assert_nf4_on_the_cpu(kwargs, model)
    assert_base_unchanged(spy)
    assert_lora_trained(job_dir / "adapter")


# ------------------------------------------------------------------ reward, then score and ppo on its adapter


@pytest.fixture(scope="module")
def reward_run(tiny_model_dir, tmp_path_factory):
    """The reward job on the 4-bit base, run once for the module: (job folder, loader spy, events)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = LoaderSpy(monkeypatch)
        job_dir = pair_job(
            tmp_path_factory.mktemp("reward-4bit") / "job", "reward", base_model=str(tiny_model_dir)
        )
        code, events = run_main("reward", job_dir)
    assert code == protocol.EXIT_OK, events
    return job_dir, spy, events


def test_reward_trains_lora_and_an_unquantised_score_head_on_the_4bit_base(reward_run):
    job_dir, spy, events = reward_run
    assert finished(events).metrics["global_step"] == 2
    ((auto_class, kwargs, model),) = spy.loads
    assert auto_class == "AutoModelForSequenceClassification"
    assert_nf4_on_the_cpu(kwargs, model)
    # The score head is not one of bitsandbytes' layers: a plain fp32 Linear (left out of quantisation), which
    # peft trains as modules_to_save.
    head = model.score.original_module if hasattr(model.score, "original_module") else model.score
    assert type(head) is torch.nn.Linear and head.weight.dtype == torch.float32
    assert_base_unchanged(spy)  # includes the fresh head as loaded: its trained copy is peft's
    weights = assert_lora_trained(job_dir / "adapter")
    (score_key,) = [k for k in weights if "score" in k]
    assert weights[score_key].dtype == torch.float32 and weights[score_key].shape == head.weight.shape
    assert not torch.equal(weights[score_key], head.weight.detach()), "the score head must train"


def test_score_scores_with_the_adapter_trained_in_4bit_unquantised(reward_run, tmp_path, monkeypatch):
    """The score program never quantises (scores are compared across answers); it reads the adapter the 4-bit
    reward job wrote."""
    reward_dir, reward_spy, _ = reward_run
    spy = LoaderSpy(monkeypatch)
    job_dir = tmp_path / "score"
    (job_dir / "data").mkdir(parents=True)
    config = {
        "kind": "score", "base_model": reward_spy.loads[0][2].name_or_path,
        "reward_adapter": str(reward_dir / "adapter"), "batch_size": 2, "device": "cpu",
    }  # fmt: skip
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    answers = [
        {"generation_id": i, "messages": example(i)["prompt"] + example(i)["completion"]} for i in range(4)
    ]
    (job_dir / "data" / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    code, events = run_main("score", job_dir)
    assert code == protocol.EXIT_OK, events
    assert events[-1].metrics["n_scored"] == 4 and math.isfinite(events[-1].metrics["mean_score"])
    ((auto_class, kwargs, model),) = spy.loads
    assert auto_class == "AutoModelForSequenceClassification"
    assert "quantization_config" not in kwargs and "device_map" not in kwargs
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def test_ppo_trains_the_policy_on_the_4bit_base(reward_run, tmp_path, monkeypatch):
    reward_dir, reward_spy, _ = reward_run
    spy = LoaderSpy(monkeypatch)
    job_dir = tmp_path / "ppo"
    (job_dir / "data").mkdir(parents=True)
    config = {
        "kind": "ppo", "base_model": reward_spy.loads[0][2].name_or_path, "parent_adapter": None,
        "reward_adapter": str(reward_dir / "adapter"), "output_name": "adapter", "max_steps": 2,
        "batch_size": 2, "mini_batch_size": 1, "ppo_epochs": 1, "max_new_tokens": 8, "max_length": 128,
        "device": "cpu", "quantization": "4bit",
    }  # fmt: skip
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    lines = [json.dumps({"id": f"p-{i}", "prompt": example(i)["prompt"]}) for i in range(4)]
    (job_dir / "data" / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, events = run_main("ppo", job_dir)
    assert code == protocol.EXIT_OK, events
    assert isinstance(events[-1], protocol.Finished), events[-3:]
    ((auto_class, kwargs, model),) = spy.loads  # one 4-bit base for policy, reference and reward
    assert auto_class == "AutoModelForCausalLM"
    assert_nf4_on_the_cpu(kwargs, model)
    assert_base_unchanged(spy)
    assert_lora_trained(job_dir / "adapter")


# ------------------------------------------------------------------ evaluate


def test_evaluate_answers_with_the_4bit_base_and_an_adapter(
    tmp_path, tiny_model_dir, tiny_adapters, monkeypatch
):
    spy = LoaderSpy(monkeypatch)
    job_dir = tmp_path / "evaluate"
    (job_dir / "data").mkdir(parents=True)
    config = {
        "kind": "evaluate", "base_model": str(tiny_model_dir), "reward_adapter": None,
        "versions": [{"name": "base", "adapter_path": None}, {"name": "B-1", "adapter_path": str(tiny_adapters[0])}],
        "max_new_tokens": 4, "system_prompt": SYSTEM, "batch_size": 2, "device": "cpu", "quantization": "4bit",
        "seed": 0,
    }  # fmt: skip
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    question = {"prompt_id": 1, "question": "How is acute pulmonary oedema treated first?",
                "reference_answer": "Sit the patient up and give furosemide.", "answer_key": None, "options": None}  # fmt: skip
    (job_dir / "data" / "questions.jsonl").write_text(json.dumps(question) + "\n", encoding="utf-8")
    (job_dir / "data" / "cached.jsonl").write_text("", encoding="utf-8")
    code, events = run_main("evaluate", job_dir)
    assert code == protocol.EXIT_OK, events
    assert isinstance(events[-1], protocol.Finished), events[-3:]
    ((_, kwargs, model),) = spy.loads  # the base once, both versions as adapters on it
    assert_nf4_on_the_cpu(kwargs, model)
    rows = [json.loads(line) for line in (job_dir / ANSWERS_FILE).read_text().splitlines()]
    assert [r["version"] for r in rows] == ["base", "B-1"] and all(1 <= r["n_tokens"] <= 4 for r in rows)
