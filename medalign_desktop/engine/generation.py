"""Streaming generation: settings, the token streamer, and the result record.

The streamer runs inside ``model.generate`` on the worker thread (no extra thread, no queue), turns token
ids into text as soon as they form whole characters, and hands each piece to a callback. Stopping is a
``threading.Event`` checked by a stopping criterion after every token.

Before an answer is generated, :func:`check_context` counts the question's tokens (chat template applied)
against the model's context: a question longer than the model reads is refused with a message naming both
lengths (a model fed more than it reads answers slowly, and about a cut-off question); one that fits but
leaves less room than the answer budget is answered within the room left, with a visible warning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from medalign_desktop.engine.errors import EngineError

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful medical assistant helping clinicians. Answer accurately and concisely, "
    "say when you are unsure, and point out when urgent care is needed."
)

TokenCallback = Callable[[str], None]


@dataclass(frozen=True)
class SamplingSettings:
    """How one answer is generated. temperature 0 means greedy decoding."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 384
    seed: int | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    def validated(self) -> SamplingSettings:
        problems = []
        if not 0.0 <= self.temperature <= 5.0:
            problems.append("temperature must be between 0 and 5")
        if not 0.0 < self.top_p <= 1.0:
            problems.append("top-p must be above 0 and at most 1")
        if not 1 <= self.max_new_tokens <= 32768:
            problems.append("max new tokens must be between 1 and 32768")
        if problems:
            raise ValueError("Sampling settings: " + "; ".join(problems) + ".")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def with_changes(self, **changes) -> SamplingSettings:
        return replace(self, **changes)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    n_tokens: int
    time_to_first_token_s: float | None
    total_time_s: float
    tokens_per_s: float  # generated tokens / total time, as the clinician experiences it
    finish_reason: str  # "stop" (end of answer), "length" (max tokens), "cancelled" (user stopped)
    settings: SamplingSettings
    model_label: str = ""
    adapter: str | None = None
    extra: dict = field(default_factory=dict)


class TextStreamer:
    """A transformers streamer (``put``/``end``) that emits text pieces to a callback.

    Detokenising token by token breaks multi-byte characters and merges spaces wrongly, so we decode the
    tokens of the current line and emit only the new, complete part (the replacement character marks an
    unfinished UTF-8 sequence). The first ``put`` carries the prompt and is skipped.
    """

    def __init__(self, tokenizer, on_text: TokenCallback | None):
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.first_token_at: float | None = None
        self.n_tokens = 0
        self.pieces: list[str] = []
        self._line_ids: list[int] = []
        self._emitted = 0
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        ids = value.reshape(-1).tolist()  # (batch=1, 1) or (1,) -> [token id]
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.n_tokens += len(ids)
        self._line_ids.extend(ids)
        text = self.tokenizer.decode(self._line_ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # wait for the rest of a multi-byte character
        self._emit(text[self._emitted :])
        if text.endswith("\n"):
            self._line_ids, self._emitted = [], 0
        else:
            self._emitted = len(text)

    def end(self) -> None:
        if self._line_ids:
            text = self.tokenizer.decode(self._line_ids, skip_special_tokens=True)
            self._emit(text[self._emitted :].rstrip("\ufffd"))
        self._line_ids, self._emitted = [], 0

    def _emit(self, piece: str) -> None:
        if piece:
            self.pieces.append(piece)
            if self.on_text:
                self.on_text(piece)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def make_stop_criteria(stop: threading.Event | None):
    """A transformers StoppingCriteria that ends generation when ``stop`` is set."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            import torch

            return torch.full((input_ids.shape[0],), bool(stop and stop.is_set()), dtype=torch.bool)

    return StoppingCriteriaList([_StopOnEvent()])


def build_messages(question: str, system_prompt: str) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages.append({"role": "user", "content": question})
    return messages


# ---------------------------------------------------------------------------------------------- context
# Tokenizers without a real limit report a placeholder (1e6, int(1e30)); from this up it is not a limit.
NO_LIMIT = 1_000_000
CONTEXT_CONFIG_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


MIN_ANSWER_TOKENS = 32  # a question leaving less room than this for its answer is refused


class ContextTooLong(EngineError):
    """The question is longer than the model reads (or leaves no room for an answer); nothing was generated."""

    def __init__(self, check: ContextCheck) -> None:
        super().__init__(check.message())
        self.check = check


@dataclass(frozen=True)
class ContextCheck:
    """How long a question is against what the model reads (None: no known limit).

    A question the model cannot read whole is refused (cutting a clinical question would answer a different
    question); one that fits but leaves less room than the answer budget gets the room left, and says so.
    """

    prompt_tokens: int  # the question with the system prompt and chat template
    answer_budget: int  # max new tokens asked for
    context_tokens: int | None

    @property
    def room(self) -> int | None:
        """Tokens left for the answer (None: no known limit)."""
        return None if self.context_tokens is None else self.context_tokens - self.prompt_tokens

    @property
    def fits(self) -> bool:
        return self.room is None or self.answer_budget <= self.room

    @property
    def refused(self) -> bool:
        return self.room is not None and self.room < min(MIN_ANSWER_TOKENS, self.answer_budget)

    @property
    def capped(self) -> bool:
        return not self.fits and not self.refused

    def settings_for(self, settings: SamplingSettings) -> SamplingSettings:
        """``settings`` with the answer budget cut to the room left, where it is larger."""
        return settings.with_changes(max_new_tokens=self.room) if self.capped else settings

    def message(self) -> str:
        """E.g. 'This question is 12,500 tokens; the model reads 8,192. ...' ('' when it fits)."""
        limit = self.context_tokens or 0
        if self.refused:
            room = "" if self.prompt_tokens >= limit else ", which leaves too little room for an answer"
            return (
                f"This question is {self.prompt_tokens:,} tokens; the model reads {limit:,}{room}. Shorten it "
                "(for example, keep only the parts of the record the question needs) and ask again."
            )
        if self.capped:
            return (
                f"The answer is limited to {self.room:,} tokens (of {self.answer_budget:,} asked for): this "
                f"question is {self.prompt_tokens:,} tokens and the model reads {limit:,}."
            )
        return ""


def context_length(model_config: Any, tokenizer: Any = None, configured: int | None = None) -> int | None:
    """The most tokens the model reads: the smallest of the engine's configured limit, the model config's
    ``max_position_embeddings`` (or its equivalent) and the tokenizer's ``model_max_length``."""
    limits = [configured] if configured else []
    for key in CONTEXT_CONFIG_KEYS:
        value = getattr(model_config, key, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < NO_LIMIT:
        limits.append(tokenizer_limit)
    return min(limits) if limits else None


def count_prompt_tokens(tokenizer: Any, question: str, system_prompt: str) -> int:
    """The question's length in tokens as the model sees it (system prompt and chat template included)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            build_messages(question, system_prompt), add_generation_prompt=True, tokenize=True
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # a BatchEncoding in some versions
            ids = ids["input_ids"]
        return len(ids)
    return len(tokenizer(question)["input_ids"])


def check_context(
    tokenizer: Any, model_config: Any, question: str, settings: SamplingSettings, *, configured: int | None = None
) -> ContextCheck:
    """Count ``question`` against the model's context: ``.refused`` (too long to answer), ``.capped`` (the
    answer budget is cut to the room left, ``.settings_for``), or it fits."""
    return ContextCheck(
        prompt_tokens=count_prompt_tokens(tokenizer, question, settings.system_prompt),
        answer_budget=settings.max_new_tokens,
        context_tokens=context_length(model_config, tokenizer, configured),
    )
