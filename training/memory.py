"""How much memory a training job will need, estimated before it starts. Standard library only.

The app's memory planner (medalign_desktop/jobs/memory_plan.py) compares this estimate with what the chosen
device has free, and unloads the answering model when the job needs its room.

    estimate_job_memory(kind, config, model_dir, device="cpu") -> MemoryEstimate

``config``: the job's settings as in config.json (the kind's defaults from training.config.defaults(kind)
updated with the overrides); ``model_dir``: the base model folder (its config.json gives the shape);
``device``: "cpu" (the estimate is peak resident memory, RSS, of the training process) or "cuda" (peak
``torch.cuda.max_memory_allocated`` plus the CUDA context).

The estimate is the sum of four parts, each from the model's shape and the job's settings:

- weights: the base model's parameters (fp32 on the CPU as training/lora.py loads them; on CUDA 4-bit NF4
  for the decoder's linear layers, and fp32 for the rest because peft's ``prepare_model_for_kbit_training``
  casts every non-quantised parameter to fp32; bf16 without quantisation);
- training: the trainable LoRA (and the reward job's score head, PPO's value head) with its gradient and two
  Adam moments, plus the frozen adapters the kind holds beside it (DPO's "ref" copy, PPO's ref and reward);
- activations: what the largest forward + backward holds at its peak: the decoder's activations (one layer's
  worth plus each layer's checkpointed input with gradient checkpointing, every layer's without), and the
  LM head's logits, which TRL's fused LM head computes in tiles of at most 4,096 tokens x 32,768 vocabulary
  columns; PPO: the generation KV cache, the no-grad scoring passes and the mini-batch's training pass; on
  the CPU also what glibc keeps resident of the memory checkpointing frees (CPU_HEAP_RETAINED);
- runtime: the fixed cost of the process (Python with torch, transformers, TRL, peft and datasets imported,
  the tokenizer and the dataset), measured on this CPU; on CUDA the CUDA context instead.

Worst case by design: every sequence is taken as ``max_length`` tokens long (TRL pads a batch to its longest
sequence, so one long example is enough to reach it), and every PPO prompt as max_length - max_new_tokens.
Jobs on short data therefore peak below the estimate. The dtype in the model's config.json does not matter:
training/lora.py loads fp32 on the CPU and NF4 / bf16 on CUDA whatever the file holds.

Checked against measured peak RSS (tests/training/test_memory_estimate.py, figures in training/README.md) on
this CPU only. The CUDA figures follow the same formula with bf16 activations and the Triton LM head (one
tile, no temporaries) but could not be checked here: no GPU was available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GiB = 2**30
MiB = 2**20

FP32 = 4  # bytes per fp32 value (CPU parameters, activations, optimiser state)
BF16 = 2  # bytes per bf16 value (CUDA compute dtype)
# 4-bit NF4 with double quantisation: half a byte per weight, one 8-bit absmax per block of 64 weights, and one
# fp32 scale per 256 of those absmaxes (bitsandbytes' blocksize 64, nested blocksize 256)
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
# fp32 weight + gradient + AdamW's two moments, per trainable parameter
TRAINABLE_BYTES = 4 * FP32

# TRL's fused LM head (trl/kernels/chunked_logprob.py): logits are computed in tiles of at most this many
# tokens x vocabulary columns (TOKEN_CHUNK_SIZE, and _CHUNKED_LOGPROB_CHUNK_SIZE in trl/trainer/utils.py).
LOGIT_TILE_TOKENS = 4096
LOGIT_TILE_VOCAB = 32768
# On a CPU (no Triton) the backward of one tile holds the tile and about seven tile-sized temporaries at
# once (y, z, log_p, p, grad, the target mask as float, and two products in ``_backward_tile``). Measured on
# the tiny model: 1.04 MiB more peak RSS per token = 8 x 32,768 x 4 bytes.
CPU_LOGIT_TILE_COPIES = 8
# With Triton (CUDA) the kernel works in place in the tile.
CUDA_LOGIT_TILE_COPIES = 1
# PPO's own loop (training/ppo/model.py) builds the answer positions' full logits: logits, the fp32 copy
# divided by the temperature and the log-softmax (saved for backward), plus its gradient in the backward.
PPO_LOGIT_COPIES = 4

# Activations of one decoder layer per token, in values of the hidden size H, the intermediate size I and the
# attention widths Q = heads x head_dim, KV = kv_heads x head_dim, counted from what autograd saves in a Llama
# layer with LoRA (dropout copies + masks) on every projection: the two RMSNorms' inputs and outputs and the
# q/k/v and gate/up LoRA dropout copies (H); q, k and v, their rotated copies, k and v repeated to every head,
# the attention output and o_proj's input and its dropout copy (Q, KV); gate, up, SiLU, their product and
# down_proj's dropout copy (I). Flash-style attention on CPU and CUDA: no (length x length) matrix is kept.
LAYER_H, LAYER_Q, LAYER_KV, LAYER_I = 11.25, 7.25, 3.0, 5.25
# With gradient checkpointing the backward recomputes one layer and holds its gradients next to its
# activations: about twice one layer's activations at the peak.
RECOMPUTE_FACTOR = 2
# On a CPU (glibc's malloc) memory freed during a pass is not all given back to the system: glibc raises its
# mmap threshold (up to 32 MiB) after the first large blocks are freed, so the activations of a few MiB that
# gradient checkpointing frees layer by layer come from the heap and stay resident. Measured on SmolLM2-135M
# (hitl, 2 x 256 tokens): one forward pass left 790 MiB resident that the live tensors (54 MiB) do not
# explain, and with the threshold fixed (MALLOC_MMAP_THRESHOLD_=131072) the step peaked at 1,587 MiB instead of
# 2,332 MiB. It grows over the first few passes, then levels off (SmolLM2 hitl: 2,221 MiB after 2 passes,
# 2,261 after 6; dpo: 3,004 after 2, 3,765 after 4, 3,710 after 6). Modelled as a share of the activations a
# pass without checkpointing would have kept, fitted on SmolLM2's hitl runs at 2 x 256 and 2 x 1,024 tokens
# (0.44 and 0.39). A pass without grad over the same tokens (DPO's reference pass, an evaluation) frees layer
# by layer too and leaves another share: fitted on SmolLM2's DPO runs above, and it explains its reward runs
# (which evaluate a held-back pair), 3,767 and 4,142 MiB, that the first share alone put at 0.88 and 0.80.
CPU_HEAP_RETAINED = 0.4
CPU_HEAP_RETAINED_NO_GRAD = 0.2

# The process's fixed cost on the CPU: Python with torch, transformers, TRL, peft and datasets imported (427 MiB
# measured for the imports alone), the tokenizer and the datasets. Fitted on this machine on the tiny model
# (13 MB of weights), where nearly everything else is the logit tiles: the intercept of peak RSS against
# tokens per batch, 495 MiB for hitl, and the reward run, 500 MiB with 35 MiB of activations. The PPO program
# imports no TRL trainer nor datasets: its tiny runs peaked at 422 and 428 MiB, about 35 MiB of it modelled.
CPU_RUNTIME_BYTES = 490 * MiB
CPU_PPO_RUNTIME_BYTES = 390 * MiB
# The CUDA context and cuBLAS workspaces: the usual figure, not measured here (no GPU was available).
CUDA_CONTEXT_BYTES = 500 * MiB

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TRAINER_KINDS = ("sft", "hitl", "dpo", "reward")
KINDS = TRAINER_KINDS + ("ppo",)


class ModelShapeError(ValueError):
    """The model folder's config.json cannot give the shape; the message names the file and the key."""


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    device: str  # "cpu" or "cuda"
    # e.g. weights, adapters+optimiser, activations, runtime
    parts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """Like "about 3.1 GiB (weights 2.0, activations 0.6, ...)"."""
        detail = ", ".join(f"{name} {value / GiB:.1f}" for name, value in self.parts.items())
        return f"about {self.total_bytes / GiB:.1f} GiB" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a decoder-only transformer (Llama-like: gated MLP, grouped-query attention)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool  # the LM head shares the embedding matrix

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each projection of one layer, by its LoRA target name."""
        h, i, q, kv = (
            self.hidden,
            self.intermediate,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
        )
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def linear_parameters(self) -> int:
        """Parameters of the decoder's projections (the ones 4-bit quantisation packs)."""
        return self.layers * sum(a * b for a, b in self.linears().values())

    def other_parameters(self, lm_head: bool = True) -> int:
        """Embeddings, norms and the LM head when it is not tied (kept unquantised)."""
        head = 0 if self.tied or not lm_head else self.vocab * self.hidden
        return self.vocab * self.hidden + head + (2 * self.layers + 1) * self.hidden

    def lora_parameters(self, rank: int, targets: list[str]) -> int:
        return self.layers * sum(rank * (a + b) for name, (a, b) in self.linears().items() if name in targets)

    def layer_activations_per_token(self) -> float:
        """Values autograd keeps for one layer and one token (see LAYER_H ...)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return LAYER_H * self.hidden + LAYER_Q * q + LAYER_KV * kv + LAYER_I * self.intermediate


def read_shape(model_dir: str | Path) -> ModelShape:
    """The shape from ``model_dir/config.json``; raises ModelShapeError naming the file and the key."""
    path = Path(model_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelShapeError(f"{path} is missing: not a Hugging Face model folder.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelShapeError(f"{path} cannot be read ({exc}).") from exc
    except json.JSONDecodeError as exc:
        raise ModelShapeError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from exc
    if not isinstance(data, dict):
        raise ModelShapeError(f"{path} must hold a JSON object.")
    data = data.get("text_config", data)  # multimodal configs nest the language model's

    def number(key: str, default: int | None = None) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelShapeError(f"{path}: '{key}' must be a positive whole number (got {value!r}).")
        return value

    hidden, heads = number("hidden_size"), number("num_attention_heads")
    return ModelShape(
        hidden=hidden,
        intermediate=number("intermediate_size"),
        layers=number("num_hidden_layers"),
        heads=heads,
        kv_heads=number("num_key_value_heads", heads),
        head_dim=number("head_dim") if data.get("head_dim") is not None else hidden // heads,
        vocab=number("vocab_size"),
        tied=bool(data.get("tie_word_embeddings", True)),
    )


def estimate_job_memory(
    kind: str, config: dict[str, Any], model_dir: str | Path, *, device: str = "cpu"
) -> MemoryEstimate:
    """Peak memory of a ``kind`` job with ``config`` on ``model_dir``'s model, on "cpu" (RSS) or "cuda".

    Every sequence is taken as ``max_length`` tokens (the worst case). Raises ModelShapeError when the model's
    config.json cannot be read, ValueError for an unknown kind or device or a setting that is not a number.
    """
    if kind not in KINDS:
        raise ValueError(f"No memory estimate for job kind {kind!r} (known: {', '.join(KINDS)}).")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (got {device!r}).")
    from training.config import defaults  # standard library only

    job = JobSettings.read(kind, {**defaults(kind), **config})
    shape = read_shape(model_dir)
    parts = {
        "weights": weight_bytes(shape, device, job.quantization, lm_head=kind != "reward"),
        "training": training_bytes(shape, kind, job),
        "activations": activation_bytes(shape, kind, job, device),
        "runtime": runtime_bytes(kind, device),
    }
    parts = {name: int(value) for name, value in parts.items()}
    return MemoryEstimate(sum(parts.values()), device, parts)


@dataclass(frozen=True)
class JobSettings:
    """The settings the estimate reads, checked (a clear error instead of a TypeError deep in the formula)."""

    batch: int  # per-device training batch (examples or pairs); PPO: mini_batch_size
    eval_batch: int  # per-device evaluation batch; PPO: forward_batch_size (generation and scoring)
    evaluates: bool  # a held-back slice is evaluated (eval_fraction > 0); PPO: False
    max_length: int
    max_new_tokens: int  # PPO only (0 otherwise)
    gradient_checkpointing: bool
    quantization: str
    lora: tuple[int, list[str]]  # (rank, target modules) of the trained adapter
    reference: tuple[int, list[str]] | None  # a frozen copy of the parent (DPO "ref", PPO ref), if any
    reward: tuple[int, list[str]] | None  # PPO's frozen reward adapter

    @classmethod
    def read(cls, kind: str, config: dict[str, Any]) -> JobSettings:
        def number(key: str) -> int:
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"config field '{key}' must be a positive whole number (got {value!r}).")
            return value

        own = (number("lora_r"), list(config.get("lora_target_modules") or []))
        parent = config.get("parent_adapter")
        lora = adapter_lora(parent, own) if parent else own
        ppo = kind == "ppo"
        return cls(
            batch=number("mini_batch_size" if ppo else "per_device_train_batch_size"),
            eval_batch=number("forward_batch_size" if ppo else "per_device_eval_batch_size"),
            evaluates=not ppo and float(config.get("eval_fraction") or 0) > 0,
            max_length=number("max_length"),
            max_new_tokens=number("max_new_tokens") if ppo else 0,
            gradient_checkpointing=bool(config.get("gradient_checkpointing", True)),
            quantization=str(config.get("quantization", "auto")),
            lora=lora,
            reference=lora if parent and kind in ("dpo", "ppo") else None,
            reward=adapter_lora(config.get("reward_adapter"), own) if ppo else None,
        )


def adapter_lora(folder: str | None, fallback: tuple[int, list[str]]) -> tuple[int, list[str]]:
    """(rank, target modules) of a saved adapter from its adapter_config.json; ``fallback`` when unreadable
    (the training program itself reports a broken adapter folder, with its name)."""
    try:
        data = json.loads((Path(folder or "") / "adapter_config.json").read_text(encoding="utf-8"))
        rank, targets = data["r"], data["target_modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return fallback
    if isinstance(targets, str):  # peft also accepts a regular expression: assume every projection
        targets = list(PROJECTIONS)
    if not isinstance(rank, int) or not isinstance(targets, list):
        return fallback
    return rank, targets


def weight_bytes(shape: ModelShape, device: str, quantization: str, lm_head: bool = True) -> float:
    """The base model: NF4 projections and fp32 embeddings and norms when 4-bit (on CUDA "auto" too; on the CPU
    only "4bit", asked for by name); else fp32 on the CPU and bf16 on CUDA.

    ``lm_head`` False for the reward model (AutoModelForSequenceClassification has a score head instead)."""
    linear, other = shape.linear_parameters(), shape.other_parameters(lm_head)
    if quantization == "4bit" or (device != "cpu" and quantization == "auto"):
        return linear * NF4_BYTES + other * FP32  # prepare_model_for_kbit_training casts the rest to fp32
    if device == "cpu":
        return (linear + other) * FP32
    return (linear + other) * BF16


def training_bytes(shape: ModelShape, kind: str, job: JobSettings) -> float:
    """The trainable adapter (and head) with gradients and Adam moments, and the frozen adapters beside it."""
    trainable = shape.lora_parameters(*job.lora)
    if kind in ("reward", "ppo"):  # the reward job's score head; PPO's value head (with its bias)
        trainable += shape.hidden + (1 if kind == "ppo" else 0)
    frozen = 0
    for adapter in (job.reference, job.reward):
        if adapter is not None:
            frozen += shape.lora_parameters(*adapter) + (shape.hidden if adapter is job.reward else 0)
    return trainable * TRAINABLE_BYTES + frozen * FP32


def activation_bytes(shape: ModelShape, kind: str, job: JobSettings, device: str) -> float:
    """The largest forward + backward (or generation) of the job, at max_length tokens per sequence."""
    retained = heap_retained_bytes(shape, kind, job, device)
    if kind == "ppo":
        return ppo_activation_bytes(shape, job, device) + retained
    lm_head = kind != "reward"
    train = pass_bytes(shape, training_tokens(kind, job), device, job, lm_head, grad=True)
    if not job.evaluates:
        return train + retained
    evaluate = pass_bytes(shape, evaluation_tokens(kind, job), device, job, lm_head, grad=False)
    return max(train, evaluate) + retained


def sequences_per_example(kind: str) -> int:
    return 2 if kind in ("dpo", "reward") else 1  # a pair runs chosen and rejected together


def training_tokens(kind: str, job: JobSettings) -> int:
    """Tokens of one training forward pass: the batch (PPO: the mini-batch) at max_length."""
    return job.batch * sequences_per_example(kind) * job.max_length


def evaluation_tokens(kind: str, job: JobSettings) -> int:
    return job.eval_batch * sequences_per_example(kind) * job.max_length


def heap_retained_bytes(shape: ModelShape, kind: str, job: JobSettings, device: str) -> float:
    """What glibc keeps resident on a CPU of the memory that passes free layer by layer (CPU_HEAP_RETAINED):
    the checkpointed training pass's, DPO's reference pass's and the evaluation pass's. 0 on CUDA (PyTorch's
    caching allocator, not glibc)."""
    if device != "cpu":
        return 0
    per_token = shape.layers * shape.layer_activations_per_token() * FP32  # a pass without checkpointing
    tokens = training_tokens(kind, job)
    retained = CPU_HEAP_RETAINED * tokens * per_token if job.gradient_checkpointing else 0
    if kind == "dpo":  # the reference pass, without grad
        retained += CPU_HEAP_RETAINED_NO_GRAD * tokens * per_token
    if job.evaluates:
        retained += CPU_HEAP_RETAINED_NO_GRAD * evaluation_tokens(kind, job) * per_token
    return retained


def pass_bytes(
    shape: ModelShape, tokens: int, device: str, job: JobSettings, lm_head: bool, grad: bool
) -> float:
    """One forward (+ backward with ``grad``) over ``tokens`` tokens through the decoder and TRL's fused LM head."""
    size = FP32 if device == "cpu" else BF16
    layer = shape.layer_activations_per_token() * size
    if not grad:  # no saved activations: about one layer's worth at a time
        decoder = tokens * layer
    elif job.gradient_checkpointing:  # each layer's input, and one layer recomputed with its gradients
        decoder = tokens * (shape.layers * shape.hidden * size + RECOMPUTE_FACTOR * layer)
    else:
        decoder = tokens * (shape.layers + 1) * layer
    if not lm_head:
        return decoder
    copies = CPU_LOGIT_TILE_COPIES if device == "cpu" else CUDA_LOGIT_TILE_COPIES
    tile = min(tokens, LOGIT_TILE_TOKENS) * min(shape.vocab, LOGIT_TILE_VOCAB) * copies * size
    return decoder + tile + tokens * shape.hidden * FP32  # + the fp32 gradient of the last hidden state


def ppo_activation_bytes(shape: ModelShape, job: JobSettings, device: str) -> float:
    """The largest of PPO's three phases (training/ppo/loop.py): generation, scoring and one mini-batch step.

    ``job.eval_batch`` is forward_batch_size (rollouts per generate call and per scoring pass)."""
    size = FP32 if device == "cpu" else BF16
    length, answer = job.max_length, job.max_new_tokens + 1
    kv_cache = job.eval_batch * length * shape.layers * 2 * shape.kv_heads * shape.head_dim * size
    generation = kv_cache + job.eval_batch * length * shape.layer_activations_per_token() * size
    # no-grad passes of forward_batch_size rollouts: one layer at a time, then the answers' logits
    logits = shape.vocab * answer * FP32
    scoring = job.eval_batch * (
        length * shape.layer_activations_per_token() * size + (PPO_LOGIT_COPIES - 1) * logits
    )
    decoder = pass_bytes(shape, training_tokens("ppo", job), device, job, lm_head=False, grad=True)
    training = decoder + job.batch * PPO_LOGIT_COPIES * logits
    return max(generation, scoring, training)


def runtime_bytes(kind: str, device: str) -> float:
    if device == "cuda":
        return CUDA_CONTEXT_BYTES
    return CPU_PPO_RUNTIME_BYTES if kind == "ppo" else CPU_RUNTIME_BYTES
