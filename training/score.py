"""The `score` program: score the app's answers with a reward adapter (from the `reward` job).

    DIR/config.json         {"kind": "score", "base_model": ..., "reward_adapter": ..., "batch_size": 8, ...}
    DIR/data/answers.jsonl  {"generation_id": 17, "messages": [system?, user, assistant]} per line
    DIR/scores.jsonl        {"generation_id": 17, "score": 0.42} per scored answer, written to a temporary
                            file and renamed when complete, so a file with this name is always whole

Events: `started` (total_steps = batches), `progress` after every batch, `finished` with ``adapter_path`` =
the scores file and metrics n_scored, n_skipped, mean_score. Scoring is not training: nothing is learnt and
held-out answers may be scored. Answers longer than ``max_length`` tokens are left unscored (a warning says
how many) rather than cut: a cut answer would be scored on something else than what it says.

The config class lives here (standard library only at import time, like training/ppo/config.py) and is
registered in training/config.py's CONFIG_CLASSES.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import protocol
from training.atomic_files import write_text_atomic
from training.cancel import CancelToken
from training.data import DataError, parse_messages, read_json_lines
from training.job_folder import SCORE_INPUT_FILE, SCORES_FILE, finished_result
from training.score_config import ScoreJobConfig


@dataclass(frozen=True)
class Answer:
    generation_id: int
    messages: list[dict[str, str]]  # prompt messages then the assistant's answer


def parse_answer(data: Any, where: str) -> Answer:
    """One decoded line of answers.jsonl; raises DataError naming ``where`` (file line N)."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    generation_id = data.get("generation_id")
    if isinstance(generation_id, bool) or not isinstance(generation_id, int):
        raise DataError(f"{where}: 'generation_id' must be a whole number (got {generation_id!r}).")
    if "messages" not in data:
        raise DataError(f"{where}: 'messages' is missing.")
    messages = parse_messages(data["messages"], "messages", where, ("system", "user", "assistant"))
    if messages[-1]["role"] != "assistant" or len(messages) < 2 or messages[-2]["role"] != "user":
        raise DataError(f"{where}: 'messages' must end with a user message and then the assistant's answer.")
    return Answer(generation_id, messages)


def load_answers(job_dir: Path) -> list[Answer]:
    path = job_dir / SCORE_INPUT_FILE
    answers = [parse_answer(data, where) for data, where, _ in read_json_lines(path)]
    if not answers:
        raise DataError(f"{path} has no answers to score.", advice="Every answer is scored already.")
    return answers


def _token_count(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def write_scores(path: Path, scores: list[tuple[int, float]]) -> Path:
    """``scores.jsonl`` written to a temporary file, flushed to disk, then renamed into place."""
    lines = (
        json.dumps({"generation_id": generation_id, "score": score}) + "\n" for generation_id, score in scores
    )
    return write_text_atomic(path, "".join(lines))


def run(config: ScoreJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Score every answer of ``data/answers.jsonl``; returns {adapter_path (the scores file), metrics, ...}."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    answers = load_answers(job_dir)  # fail fast on bad data, before torch loads

    from training.lora import choose_device
    from training.reward_score import load_reward_model, score_conversations
    from training.runner import log, write_result

    plan = choose_device(config.device, "none")
    log(
        f"{len(answers)} answers; loading {config.base_model} + {config.reward_adapter} on {plan.describe()}."
    )
    model, tokenizer = load_reward_model(config.base_model, config.reward_adapter, plan)
    cancel.check()
    kept = [a for a in answers if _token_count(tokenizer, a.messages) <= config.max_length]
    if len(kept) < len(answers):
        log(
            f"Left {len(answers) - len(kept)} answers longer than {config.max_length} tokens unscored.",
            "warning",
        )
    if not kept:
        raise DataError(
            f"No answer fits in max_length = {config.max_length} tokens.", advice="Raise max_length."
        )

    cancel.deferred = True  # from here a cancel stops between batches
    batches = [kept[i : i + config.batch_size] for i in range(0, len(kept), config.batch_size)]
    protocol.emit(
        protocol.Started(
            kind=config.kind, total_steps=len(batches), n_train=len(kept), n_eval=0, device=plan.describe()
        )
    )
    scores: list[tuple[int, float]] = []
    for step, batch in enumerate(batches, start=1):
        values = score_conversations(model, tokenizer, [a.messages for a in batch], batch_size=len(batch))
        scores += [(a.generation_id, v) for a, v in zip(batch, values, strict=True)]
        cancel.check()
        elapsed = time.monotonic() - started
        eta = elapsed / step * (len(batches) - step)
        protocol.emit(protocol.Progress(step=step, total=len(batches), elapsed_s=elapsed, eta_s=eta))

    path = write_scores(job_dir / SCORES_FILE, scores)
    values = [s for _, s in scores]
    metrics = {
        "n_scored": len(scores),
        "n_skipped": len(answers) - len(kept),
        "mean_score": sum(values) / len(values) if values else None,
        "duration_s": round(time.monotonic() - started, 3),
    }
    protocol.emit(protocol.Artifact(name="scores", path=str(path)))
    write_result(job_dir, finished_result(config.kind, str(path), metrics, config.to_dict()))
    return {"adapter_path": str(path), "metrics": metrics, "duration_s": metrics["duration_s"]}
