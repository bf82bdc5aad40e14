"""``PPOJobConfig``: the settings of a `ppo` job (config.json), in the style of training/config.py.

Standard library only; shared choices come from training/config_base.py (training/config.py registers this
class and imports this module, never the other way).

Defaults: the research project's lr 1e-5, batch 16 rollouts per PPO step and mini-batch 1; the rest are the
defaults of TRL's former PPOTrainer (which the research project used): 4 PPO epochs per batch, clip 0.2 for
policy and value, value loss coefficient 0.1, gamma 1, lambda 0.95, KL coefficient 0.2 adapted towards a
target KL of 6 nats per answer over a horizon of 10,000 rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.config_base import DEVICES, LORA_TARGET_MODULES, QUANTIZATIONS, JobConfigChecks

KL_ESTIMATORS = ("k1", "k3")  # k1: logp - ref_logp (TRL's default); k3: (r - 1) - log r, r = ref_p / p


def _lora_targets() -> list[str]:
    return list(LORA_TARGET_MODULES)


@dataclass
class PPOJobConfig(JobConfigChecks):
    """PPO of the policy adapter against a reward adapter, with a per-token KL penalty to the reference."""

    # -- what to train (written by the app) --
    kind: str = "ppo"
    base_model: str = ""  # folder of a Hugging Face causal LM (safetensors), never a hub id
    # starting policy (the active SFT / HITL / DPO adapter), also the frozen reference; None: a fresh LoRA,
    # and the reference is the base model with adapters disabled
    parent_adapter: str | None = None
    reward_adapter: str = ""  # folder of a reward adapter (LoRA + score head, from the `reward` job)
    output_name: str = "adapter"  # the final policy adapter is saved to DIR/<output_name>

    # -- PPO --
    max_steps: int = 20  # PPO steps: each generates batch_size answers, scores them, then optimises
    batch_size: int = 16  # rollouts per PPO step
    mini_batch_size: int = 1  # rollouts per optimiser step
    ppo_epochs: int = 4  # passes over each batch of rollouts
    learning_rate: float = 1e-5
    max_grad_norm: float = 1.0
    clip_range: float = 0.2  # policy ratio kept within 1 +- clip_range
    clip_range_value: float = 0.2  # value predictions kept within old value +- clip_range_value
    vf_coef: float = 0.1  # weight of the value loss in the total loss
    gamma: float = 1.0  # discount
    lam: float = 0.95  # GAE lambda
    init_kl_coef: float = 0.2  # weight of the per-token KL penalty in the reward
    kl_target: float | None = 6.0  # adapt the coefficient towards this KL per answer; None: fixed
    kl_horizon: int = 10000  # rollouts over which the adaptive coefficient moves by at most 20 %
    kl_estimator: str = "k1"
    seed: int = 42

    # -- generation (rollouts) --
    max_new_tokens: int = 128
    temperature: float = 1.0  # sampling temperature; log-probs are taken at the same temperature
    max_length: int = 1024  # prompt + answer tokens; prompts over max_length - max_new_tokens are skipped
    forward_batch_size: int = 8  # rollouts per generate / scoring forward pass (a memory knob)

    # -- evaluation (greedy answers to held-back prompts, scored; model selection and early stopping) --
    # prompts held back from data/prompts.jsonl by a seeded shuffle, when there is no data/eval_prompts.jsonl;
    # only when at least as many stay for training (else no evaluation, and a log line says why)
    eval_prompts: int = 8
    eval_every: int = 5  # PPO steps between evaluations (and one after the last step); 0: no evaluation
    # stop after this many evaluations in a row without a higher eval_reward_mean; 0: never stop early
    early_stopping_patience: int = 0

    # -- checkpoints --
    # PPO steps between checkpoints; there is also one at every evaluation and after the last step
    # (the last and the best are kept)
    checkpoint_every: int = 5
    # set by `--resume`: continue from the last complete checkpoint (training/checkpoints.py)
    resume: bool = False

    # -- memory and device --
    gradient_checkpointing: bool = True
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    quantization: str = "auto"  # "auto": 4-bit NF4 on CUDA with bitsandbytes; "none"; "4bit"

    # -- LoRA of a fresh policy (ignored with parent_adapter: its own settings are kept) --
    lora_r: int = 16
    lora_alpha: int = 32
    # 0 by default (TRL's PPO disabled dropout too): with dropout the first optimisation pass would already
    # see a policy ratio != 1 and clip for no reason
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(default_factory=_lora_targets)

    @property
    def max_prompt_length(self) -> int:
        return self.max_length - self.max_new_tokens

    def validate(self) -> None:
        """Check values (types are checked when reading); raises ConfigError naming the field."""
        for name in ("base_model", "reward_adapter"):
            if not getattr(self, name):
                raise self.bad(name, "must name a folder")
        self.check_folder_name("output_name")
        positive = (
            "max_steps",
            "batch_size",
            "mini_batch_size",
            "ppo_epochs",
            "learning_rate",
            "max_grad_norm",
        )
        positive += ("clip_range", "clip_range_value", "max_new_tokens", "temperature", "max_length")
        positive += ("forward_batch_size", "checkpoint_every", "kl_horizon", "lora_r", "lora_alpha")
        self.check_positive(*positive)
        for name in ("vf_coef", "init_kl_coef", "eval_prompts", "eval_every", "early_stopping_patience"):
            if getattr(self, name) < 0:
                raise self.bad(name, "must be 0 or more")
        for name in ("gamma", "lam"):
            if not 0 <= getattr(self, name) <= 1:
                raise self.bad(name, "must be between 0 and 1")
        if not 0 <= self.lora_dropout < 1:
            raise self.bad("lora_dropout", "must be at least 0 and below 1")
        if self.early_stopping_patience and not self.eval_every:
            raise self.bad(
                "early_stopping_patience", "needs evaluation: set eval_every above 0, or patience 0"
            )
        if self.kl_target is not None and self.kl_target <= 0:
            raise self.bad("kl_target", "must be greater than 0, or null for a fixed KL coefficient")
        if self.mini_batch_size > self.batch_size:
            raise self.bad("mini_batch_size", f"must be at most batch_size ({self.batch_size})")
        if self.max_new_tokens >= self.max_length:
            raise self.bad(
                "max_new_tokens", f"must leave room for the prompt in max_length ({self.max_length})"
            )
        self.check_choice("kl_estimator", KL_ESTIMATORS)
        self.check_choice("device", DEVICES)
        self.check_choice("quantization", QUANTIZATIONS)
        if not self.lora_target_modules:
            raise self.bad("lora_target_modules", "must name at least one module")
