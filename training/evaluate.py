"""The `evaluate` program: answer the held-out questions with each model version and measure the answers.

    DIR/config.json           {"kind": "evaluate", "base_model": ..., "versions": [{"name": "B-iter-2",
                              "adapter_path": ... | null}, ...], "reward_adapter": ... | null, ...}
    DIR/data/questions.jsonl  {"prompt_id", "question", "reference_answer", "answer_key", "options"} per line
    DIR/data/cached.jsonl     {"version", "prompt_id", "text", "n_tokens", "finish_reason"}: answers already
                              generated with the same settings, reused as they are (optional, may be empty)
    DIR/answers.jsonl         every version x question: the answer, cached or not, parsed option, correctness,
                              reward score
    DIR/results.json          {"settings": {...}, "versions": {name: metrics}} (training/eval_metrics.py)

Steps: check config, adapter folders and data (before torch loads) -> load the base once (4-bit on CUDA)
with every version's adapter as a named peft adapter ("base": adapters disabled) -> greedy answers in
batches (left padding, the chat template with the system prompt), skipping cached ones, a `progress` event
per answer -> with a reward adapter, the generator is released and the reward model scores every answer
(training/reward_score.py, the same scores as the app's Reward column) -> metrics -> answers.jsonl and
results.json written to temporary files and renamed. Cancel (SIGTERM, exit 143) stops generation at the next
token; nothing is written. The config class is stdlib-only at import time, registered in training/config.py.
Loading the versions and batched generation: training/eval_generate.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training import protocol
from training.atomic_files import write_text_atomic
from training.cancel import CancelToken
from training.data import DataError, read_json_lines
from training.eval_generate import active_adapter, free_memory, generate_batch, load_generator
from training.evaluate_config import EvaluateJobConfig, Version
from training.job_folder import ANSWERS_FILE, CACHED_FILE, QUESTIONS_FILE, RESULTS_FILE, finished_result


@dataclass(frozen=True)
class Question:
    prompt_id: int
    question: str
    reference_answer: str | None
    answer_key: str | None
    options: dict[str, str] | list[str] | None


@dataclass(frozen=True)
class Answer:
    version: str
    prompt_id: int
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (end of turn) or "length" (max_new_tokens reached)
    cached: bool


# ---------------------------------------------------------------------------------------------- data


def _whole_number(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: '{key}' must be a whole number (got {value!r}).")
    return value


def _optional_text(data: dict, key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{where}: '{key}' must be text or null (got {type(value).__name__}).")
    return value


def _options(value: Any, where: str) -> dict[str, str] | list[str] | None:
    if value is None:
        return None
    texts = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if texts is None or not all(isinstance(t, str) for t in texts):
        raise DataError(f"{where}: 'options' must be an object of letter -> text, a list of texts, or null.")
    return value


def parse_question(data: Any, where: str) -> Question:
    """One decoded line of questions.jsonl; raises DataError naming ``where`` (file line N)."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    prompt_id = _whole_number(data, "prompt_id", where)
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: 'question' must be a non-empty text.")
    options = _options(data.get("options"), where)
    answer_key = _optional_text(data, "answer_key", where)
    if answer_key is not None:
        from training.eval_metrics import normalise_key, option_letters

        letter = normalise_key(answer_key)
        if letter is None or (options is not None and letter not in option_letters(options)):
            raise DataError(f"{where}: 'answer_key' {answer_key!r} is not one of the options' letters.")
    reference = _optional_text(data, "reference_answer", where)
    return Question(prompt_id, question, reference, answer_key, options)


def load_questions(job_dir: Path) -> list[Question]:
    path = job_dir / QUESTIONS_FILE
    questions: list[Question] = []
    seen: set[int] = set()
    for data, where, _ in read_json_lines(path):
        question = parse_question(data, where)
        if question.prompt_id in seen:
            raise DataError(f"{where}: prompt_id {question.prompt_id} appears twice.")
        seen.add(question.prompt_id)
        questions.append(question)
    if not questions:
        raise DataError(f"{path} has no questions.", advice="Mark some questions as held out first.")
    return questions


def parse_cached(data: Any, where: str) -> Answer:
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    version, text = data.get("version"), data.get("text")
    if not isinstance(version, str) or not version:
        raise DataError(f"{where}: 'version' must be a version name (got {version!r}).")
    if not isinstance(text, str):
        raise DataError(f"{where}: 'text' must be text (got {type(text).__name__}).")
    finish_reason = data.get("finish_reason")
    if not isinstance(finish_reason, str):
        raise DataError(f"{where}: 'finish_reason' must be text (got {finish_reason!r}).")
    prompt_id, n_tokens = _whole_number(data, "prompt_id", where), _whole_number(data, "n_tokens", where)
    return Answer(version, prompt_id, text, n_tokens, finish_reason, cached=True)


def load_cached(job_dir: Path) -> dict[tuple[str, int], Answer]:
    """(version, prompt_id) -> cached answer; a missing file means nothing is cached."""
    path = job_dir / CACHED_FILE
    if not path.exists():
        return {}
    cached: dict[tuple[str, int], Answer] = {}
    for data, where, _ in read_json_lines(path):
        answer = parse_cached(data, where)
        cached.setdefault((answer.version, answer.prompt_id), answer)
    return cached


def user_message(question: Question) -> str:
    """The question, followed by its options as "A. text" lines unless the question already lists them."""
    from training.eval_metrics import option_letters

    if question.options is None:
        return question.question
    letters = option_letters(question.options)
    if all(text and text in question.question for text in letters.values()):
        return question.question
    lines = [f"{letter}. {text}" for letter, text in letters.items() if text is not None]
    return question.question.rstrip() + "\n\n" + "\n".join(lines)


def prompt_messages(question: Question, system_prompt: str) -> list[dict[str, str]]:
    """As the app's engine builds them: the system prompt (if any), then the user's question."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return [*messages, {"role": "user", "content": user_message(question)}]


def _task_type(folder: Path) -> str | None:
    return json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("task_type")


def check_inputs(
    config: EvaluateJobConfig, job_dir: Path
) -> tuple[list[Question], dict[tuple[str, int], Answer]]:
    """Cheap checks that fail fast, before torch loads; returns the questions and the cached answers."""
    from training.lora import ModelError, check_adapter_folder, check_model_folder

    for name in (ANSWERS_FILE, RESULTS_FILE):
        if (job_dir / name).exists():
            raise FileExistsError(f"{job_dir / name} already exists; refusing to overwrite earlier results.")
    check_model_folder(config.base_model)
    for version in config.version_list():
        if version.adapter_path is None:
            continue
        folder = check_adapter_folder(version.adapter_path, f"Adapter of version {version.name!r}")
        if _task_type(folder) == "SEQ_CLS":
            raise ModelError(
                f"Adapter {folder} of version {version.name!r} is a reward model, not a chat model."
            )
    if config.reward_adapter:
        folder = check_adapter_folder(config.reward_adapter, "Reward adapter")
        if _task_type(folder) != "SEQ_CLS":
            raise ModelError(
                f"Reward adapter {folder} is not a reward adapter (train one with the `reward` job)."
            )
    return load_questions(job_dir), load_cached(job_dir)


# ---------------------------------------------------------------------------------------------- outputs


def answer_rows(
    questions: list[Question], versions: list[Version], answers: dict[tuple[str, int], Answer],
    rewards: dict[tuple[str, int], float] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """answers.jsonl's rows, version by version in config order, questions in file order."""
    from training.eval_metrics import is_correct, parse_option

    rows = []
    for version in versions:
        for q in questions:
            answer = answers[(version.name, q.prompt_id)]
            multiple_choice = q.answer_key is not None or q.options is not None
            parsed = parse_option(answer.text, q.options) if multiple_choice else None
            row: dict[str, Any] = asdict(answer)
            row["parsed_option"] = parsed
            row["correct"] = is_correct(parsed, q.answer_key)
            row["reward"] = None if rewards is None else rewards[(version.name, q.prompt_id)]
            rows.append(row)
    return rows


def results(
    config: EvaluateJobConfig, questions: list[Question], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    from training.eval_metrics import summarise

    references = {q.prompt_id: q.reference_answer for q in questions}
    versions = {}
    for version in config.version_list():
        mine = [
            {**r, "reference_answer": references[r["prompt_id"]]}
            for r in rows
            if r["version"] == version.name
        ]
        versions[version.name] = summarise(mine, has_reward=config.reward_adapter is not None)
    settings = {
        "max_new_tokens": config.max_new_tokens,
        "temperature": 0,
        "system_prompt": config.system_prompt,
        "seed": config.seed,
    }
    return {"settings": settings, "versions": versions}


# ---------------------------------------------------------------------------------------------- program


def run(config: EvaluateJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Answer, score and measure; returns {adapter_path (results.json), metrics, duration_s}. Raises on failure."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    versions = config.version_list()
    questions, cached = check_inputs(config, job_dir)
    names = {v.name for v in versions}
    ids = {q.prompt_id for q in questions}
    answers = {key: a for key, a in cached.items() if key[0] in names and key[1] in ids}
    pending = [(v, q) for v in versions for q in questions if (v.name, q.prompt_id) not in answers]

    import torch

    from training.lora import choose_device
    from training.runner import log, write_result

    torch.manual_seed(config.seed)
    plan = choose_device(config.device, config.quantization)
    log(
        f"{len(versions)} versions x {len(questions)} questions: {len(answers)} answers cached, "
        f"{len(pending)} to generate on {plan.describe()}."
    )
    answers.update(generate_all(config, plan, pending, cancel))
    free_memory()  # the generator is gone with generate_all's frame: one base in memory at a time
    rewards = score_all(config, plan, questions, versions, answers, cancel) if config.reward_adapter else None

    cancel.check()
    cancel.deferred = True  # from here the job finishes: a late SIGTERM is ignored
    rows = answer_rows(questions, versions, answers, rewards)
    summary = results(config, questions, rows)
    write_text_atomic(job_dir / ANSWERS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    path = write_text_atomic(job_dir / RESULTS_FILE, json.dumps(summary, indent=2, ensure_ascii=False))
    metrics = {
        "n_versions": len(versions),
        "n_questions": len(questions),
        "n_generated": len(pending),
        "n_cached": len(rows) - len(pending),
        "duration_s": round(time.monotonic() - started, 3),
    }
    write_result(job_dir, finished_result(config.kind, str(path), metrics, config.to_dict()))
    return {"adapter_path": str(path), "metrics": metrics, "duration_s": metrics["duration_s"]}


def generate_all(
    config: EvaluateJobConfig, plan: Any, pending: list[tuple[Version, Question]], cancel: CancelToken
) -> dict[tuple[str, int], Answer]:
    """Greedy answers to the pending (version, question) pairs, a `progress` event after each."""
    from training.lora import load_tokenizer

    if not pending:  # everything cached: no generator to load
        protocol.emit(
            protocol.Started(kind=config.kind, total_steps=0, n_train=0, n_eval=0, device=plan.describe())
        )
        return {}
    tokenizer = load_tokenizer(config.base_model)
    needed = list(dict.fromkeys(v for v, _ in pending))
    model, adapters = load_generator(config.base_model, plan, needed)
    cancel.check()
    protocol.emit(
        protocol.Started(kind=config.kind, total_steps=len(pending), n_train=len(pending), n_eval=0,
                         device=plan.describe())
    )  # fmt: skip
    cancel.deferred = True  # from here a cancel stops generation at the next token
    started, done, out = time.monotonic(), 0, {}
    for version in needed:
        mine = [q for v, q in pending if v == version]
        for start in range(0, len(mine), config.batch_size):
            batch = mine[start : start + config.batch_size]
            with active_adapter(model, adapters[version.name]):
                prompts = [prompt_messages(q, config.system_prompt) for q in batch]
                generated = generate_batch(model, tokenizer, prompts, config.max_new_tokens, cancel)
            cancel.check()
            for q, (text, n_tokens, reason) in zip(batch, generated, strict=True):
                out[(version.name, q.prompt_id)] = Answer(
                    version.name, q.prompt_id, text, n_tokens, reason, False
                )
                done += 1
                elapsed = time.monotonic() - started
                eta = elapsed / done * (len(pending) - done)
                protocol.emit(protocol.Progress(step=done, total=len(pending), elapsed_s=elapsed, eta_s=eta))
    return out


def score_all(
    config: EvaluateJobConfig, plan: Any, questions: list[Question], versions: list[Version],
    answers: dict[tuple[str, int], Answer], cancel: CancelToken,
) -> dict[tuple[str, int], float]:  # fmt: skip
    """Every answer (cached ones too) scored with the reward adapter, batch by batch."""
    from training.reward_score import load_reward_model, score_conversations
    from training.runner import log

    keys = [(v.name, q.prompt_id) for v in versions for q in questions]
    by_id = {q.prompt_id: q for q in questions}
    log(f"Scoring {len(keys)} answers with the reward model {config.reward_adapter}.")
    model, tokenizer = load_reward_model(config.base_model, str(config.reward_adapter), plan)
    cancel.check()
    scores: dict[tuple[str, int], float] = {}
    for start in range(0, len(keys), config.batch_size):
        chunk = keys[start : start + config.batch_size]
        conversations = [
            [
                *prompt_messages(by_id[pid], config.system_prompt),
                {"role": "assistant", "content": answers[(name, pid)].text},
            ]
            for name, pid in chunk
        ]
        values = score_conversations(model, tokenizer, conversations, batch_size=len(chunk))
        scores.update(zip(chunk, values, strict=True))
        cancel.check()
    return scores
