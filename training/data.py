"""Training data: ``DIR/data/train.jsonl`` (and optional ``eval.jsonl``) read and checked line by line.

One example per line, in TRL's conversational prompt/completion form::

    {"prompt": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "completion": [{"role": "assistant", "content": "..."}],
     "id": "..."}

The prompt is one or more system / user / assistant messages ending with a user message; the completion is
one or more assistant messages. The loss is computed on the completion only (TRL's default for
prompt/completion data). ``id`` is optional; other keys are ignored. Every problem names the file and line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from training.job_folder import EVAL_FILE, TRAIN_FILE

ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A data file cannot be used; the message names the file and line. ``advice``: what to do, if special."""

    def __init__(self, message: str, advice: str | None = None):
        super().__init__(message)
        self.advice = advice


@dataclass
class Examples:
    """Examples ready for ``datasets.Dataset.from_dict``: only the columns the trainer needs."""

    prompt: list[list[dict[str, str]]] = field(default_factory=list)
    completion: list[list[dict[str, str]]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompt)

    def columns(self) -> dict[str, list]:
        return {"prompt": self.prompt, "completion": self.completion}

    def subset(self, indices: list[int]) -> Examples:
        return Examples(
            [self.prompt[i] for i in indices],
            [self.completion[i] for i in indices],
            [self.ids[i] for i in indices],
        )


def parse_messages(value: Any, key: str, where: str, allowed: tuple[str, ...]) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataError(
            f'{where}: \'{key}\' must be a non-empty list of messages ({{"role": ..., "content": ...}}).'
        )
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataError(f"{where}: {key}[{i}] must be an object with 'role' and 'content'.")
        role, content = message.get("role"), message.get("content")
        if role not in allowed:
            raise DataError(f"{where}: {key}[{i}] has role {role!r}; expected one of {', '.join(allowed)}.")
        if not isinstance(content, str):
            raise DataError(f"{where}: {key}[{i}] ({role}) needs a text 'content'.")
        out.append({"role": role, "content": content})
    return out


def parse_example(data: Any, where: str) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None]:
    """(prompt, completion, id) of one decoded line; raises DataError naming ``where`` (file:line)."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    for key in ("prompt", "completion"):
        if key not in data:
            raise DataError(f"{where}: '{key}' is missing.")
    prompt = parse_messages(data["prompt"], "prompt", where, ROLES)
    if prompt[-1]["role"] != "user":
        raise DataError(f"{where}: the prompt must end with a user message.")
    completion = parse_messages(data["completion"], "completion", where, ("assistant",))
    if not any(m["content"].strip() for m in completion):
        raise DataError(f"{where}: the completion (the answer to learn) is empty.")
    example_id = data.get("id")
    if example_id is not None and not isinstance(example_id, str | int):
        raise DataError(f"{where}: 'id' must be a string.")
    return prompt, completion, None if example_id is None else str(example_id)


def read_json_lines(path: str | Path) -> Iterator[tuple[Any, str, int]]:
    """(decoded object, "FILE line N", N) for each non-blank line; raises DataError naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} is missing.") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc}).") from exc
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            data = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not valid UTF-8 (byte {exc.start}).") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno}).") from None
        yield data, where, number


def load_examples(path: str | Path) -> Examples:
    """Read and check a JSONL file; raises DataError naming the file (and line) on the first problem."""
    examples = Examples()
    for data, where, number in read_json_lines(path):
        prompt, completion, example_id = parse_example(data, where)
        examples.prompt.append(prompt)
        examples.completion.append(completion)
        examples.ids.append(example_id if example_id is not None else f"line-{number}")
    if not examples.prompt:
        raise DataError(f"{path} has no examples.")
    return examples


class Splittable(Protocol):  # Examples here, Pairs in training/pair_data.py
    def __len__(self) -> int: ...
    def subset(self, indices: list[int]) -> Self: ...


S = TypeVar("S", bound=Splittable)


# A train.jsonl of fewer examples (or pairs) keeps them all for training: a held-back slice of one or two
# would give an evaluation loss too noisy to pick a checkpoint or stop early by, and costs scarce data.
MIN_EVAL_SPLIT = 10


def split_eval(examples: S, fraction: float, seed: int, min_size: int = 2) -> tuple[S, S | None]:
    """Hold out ``fraction`` of the examples (at least one, never all) for evaluation; same seed, same split.
    Fewer than ``min_size`` examples: no split."""
    if fraction <= 0 or len(examples) < max(2, min_size):
        return examples, None
    n_eval = min(len(examples) - 1, max(1, round(len(examples) * fraction)))
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return examples.subset(sorted(order[n_eval:])), examples.subset(sorted(order[:n_eval]))


def split_note(n_train: int, fraction: float, n_eval: int, noun: str = "examples") -> str | None:
    """The log line saying why a job that asked for a held-back slice got none (``n_eval`` 0), or None."""
    if n_eval or fraction <= 0 or n_train >= MIN_EVAL_SPLIT:
        return None
    return (
        f"No evaluation slice: {n_train} {noun} are fewer than {MIN_EVAL_SPLIT}, so all train "
        "(no evaluation loss, no early stopping; the best checkpoint is the last)."
    )


def load_train_and_eval(
    job_dir: str | Path, load: Callable[[Path], S], eval_fraction: float, seed: int
) -> tuple[S, S | None]:
    """(train, eval or None) of a job folder, each file read with ``load``: ``data/eval.jsonl`` when present,
    else a held-out fraction of the training file (none below MIN_EVAL_SPLIT lines)."""
    job_dir = Path(job_dir)
    train = load(job_dir / TRAIN_FILE)
    if (job_dir / EVAL_FILE).exists():
        return train, load(job_dir / EVAL_FILE)
    return split_eval(train, eval_fraction, seed, MIN_EVAL_SPLIT)


def load_job_data(job_dir: str | Path, eval_fraction: float, seed: int) -> tuple[Examples, Examples | None]:
    """(train, eval or None) examples of a job folder (load_train_and_eval)."""
    return load_train_and_eval(job_dir, load_examples, eval_fraction, seed)
