"""Preference pairs for the `dpo` and `reward` jobs: ``DIR/data/train.jsonl`` (and optional ``eval.jsonl``).

One pair per line, in TRL's explicit-prompt conversational preference form::

    {"id": "edit-12",
     "prompt": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "the better answer"}],
     "rejected": [{"role": "assistant", "content": "the worse answer"}]}

The prompt is system / user / assistant messages ending with a user message; ``chosen`` and ``rejected`` are
one or more assistant messages with some text, and must differ (a pair with two equal answers teaches
nothing and makes DPO's loss constant). ``id`` is optional; other keys are ignored; blank lines are skipped.
Every problem names the file and line, before torch loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.data import ROLES, DataError, load_train_and_eval, parse_messages, read_json_lines

Messages = list[dict[str, str]]


@dataclass
class Pairs:
    """Pairs ready for ``datasets.Dataset.from_dict``: only the columns the trainers need."""

    prompt: list[Messages] = field(default_factory=list)
    chosen: list[Messages] = field(default_factory=list)
    rejected: list[Messages] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompt)

    def columns(self) -> dict[str, list]:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}

    def subset(self, indices: list[int]) -> Pairs:
        return Pairs(
            [self.prompt[i] for i in indices],
            [self.chosen[i] for i in indices],
            [self.rejected[i] for i in indices],
            [self.ids[i] for i in indices],
        )


def _answer(data: dict[str, Any], key: str, where: str) -> Messages:
    answer = parse_messages(data[key], key, where, ("assistant",))
    if not any(m["content"].strip() for m in answer):
        raise DataError(f"{where}: the {key} answer is empty.")
    return answer


def parse_pair(data: Any, where: str) -> tuple[Messages, Messages, Messages, str | None]:
    """(prompt, chosen, rejected, id) of one decoded line; raises DataError naming ``where`` (file:line)."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    for key in ("prompt", "chosen", "rejected"):
        if key not in data:
            raise DataError(f"{where}: '{key}' is missing.")
    prompt = parse_messages(data["prompt"], "prompt", where, ROLES)
    if prompt[-1]["role"] != "user":
        raise DataError(f"{where}: the prompt must end with a user message.")
    chosen, rejected = _answer(data, "chosen", where), _answer(data, "rejected", where)
    if chosen == rejected:
        raise DataError(f"{where}: 'chosen' and 'rejected' are the same answer.")
    pair_id = data.get("id")
    if pair_id is not None and not isinstance(pair_id, str | int):
        raise DataError(f"{where}: 'id' must be a string.")
    return prompt, chosen, rejected, None if pair_id is None else str(pair_id)


def load_pairs(path: str | Path) -> Pairs:
    """Read and check a pairs JSONL file; raises DataError naming the file (and line) on the first problem."""
    pairs = Pairs()
    for data, where, number in read_json_lines(path):
        prompt, chosen, rejected, pair_id = parse_pair(data, where)
        pairs.prompt.append(prompt)
        pairs.chosen.append(chosen)
        pairs.rejected.append(rejected)
        pairs.ids.append(pair_id if pair_id is not None else f"line-{number}")
    if not pairs.prompt:
        raise DataError(f"{path} has no preference pairs.")
    return pairs


def load_pair_data(job_dir: str | Path, eval_fraction: float, seed: int) -> tuple[Pairs, Pairs | None]:
    """(train, eval or None) pairs of a job folder (training/data.py's load_train_and_eval)."""
    return load_train_and_eval(job_dir, load_pairs, eval_fraction, seed)


def pair_line(prompt: Messages, chosen: str, rejected: str, pair_id: str | None = None) -> str:
    """One JSONL line of a pair (for writers and tests): the answers as single assistant messages."""
    data: dict[str, Any] = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }
    if pair_id is not None:
        data = {"id": pair_id, **data}
    return json.dumps(data, ensure_ascii=False)
