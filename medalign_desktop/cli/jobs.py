"""Training and evaluation jobs from a terminal, through the app's own JobManager (jobs/headless.py):

    medalign train {sft,hitl,dpo,reward,ppo} [--parent VERSION] [--reward-model VERSION] [--set KEY=VALUE ...]
    medalign evaluate [--versions NAME ...] [--max-new-tokens N]
    medalign jobs list | show ID | resume ID | cancel ID

Each runs to the end in the foreground with a progress line (``--json``: one event a line). Ctrl+C cancels
the job cleanly: the program stops at a step boundary and no version is registered. The exit status is 0
only when the job succeeded (a version registered, or the evaluation stored), 1 when it failed or was
cancelled, 2 when it could not start.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from medalign_desktop.cli.common import add_db_argument, existing_db, say
from medalign_desktop.cli.progress import TerminalReporter

TRAIN_KINDS = ("sft", "hitl", "dpo", "reward", "ppo")
EXIT_JOB_FAILED = 1


def parse_settings(kind: str, pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE``: the value read as JSON (3, 0.5, true, "text"), else kept as text; a key the kind's
    config does not have is refused with the keys it has."""
    from medalign_desktop.jobs.memory_plan import kind_defaults

    known = kind_defaults(kind)
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: write KEY=VALUE, e.g. --set max_steps=20")
        if key not in known:
            raise ValueError(
                f"--set {key}: {kind} jobs have no such setting (they have: {', '.join(sorted(known))})"
            )
        try:
            settings[key] = json.loads(text)
        except ValueError:
            settings[key] = text
    return settings


def base_model(args: argparse.Namespace) -> str:
    from medalign_desktop.config import ConfigError, load_config

    model = args.model or load_config().base_model
    if not model:
        raise ConfigError(
            "No base model set: run `medalign models install-demo` or `medalign models use DIR`."
        )
    return str(model)


def _reward_id(store, name: str | None) -> int | None:
    from medalign_desktop.jobs.requests import RequestError, reward_versions

    if name is None:
        return None
    for version in reward_versions(store):
        if version.name == name:
            return version.id
    raise RequestError(f"No reward model named {name!r}; `medalign versions list` shows them.")


def _run_request(args: argparse.Namespace, make_request, label: str) -> int:
    """Build the JobRequest on the store thread, run it to the end, say how it ended."""
    from medalign_desktop.jobs.headless import HeadlessWorkspace

    reporter = TerminalReporter(json_lines=args.json, verbose=args.verbose, label=label)

    async def go(ws: HeadlessWorkspace):
        request = await ws.store_call(make_request)
        return await ws.run_job(request, reporter)

    outcome = HeadlessWorkspace(existing_db(args), launcher=args.launcher).run(go)
    reporter.outcome(outcome)
    return 0 if outcome.succeeded else EXIT_JOB_FAILED


def cmd_train(args: argparse.Namespace) -> int:
    from medalign_desktop.engine import DEFAULT_SYSTEM_PROMPT
    from medalign_desktop.jobs.requests import training_request

    overrides = parse_settings(args.kind, args.set or [])
    model = base_model(args)

    def make_request(store):
        return training_request(
            store, kind=args.kind, base_model=model, system_prompt=args.system_prompt or DEFAULT_SYSTEM_PROMPT,
            overrides=overrides, import_batch_ids=tuple(args.pairs_batch or ()),
            reward_version_id=_reward_id(store, args.reward_model), prompt_scope=args.prompts,
            max_prompts=args.max_prompts, parent=args.parent, trigger="cli",
        )  # fmt: skip

    return _run_request(args, make_request, args.kind)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medalign_desktop.engine import DEFAULT_SYSTEM_PROMPT
    from medalign_desktop.jobs.evaluation import evaluable_versions, evaluation_request

    model = base_model(args)

    def make_request(store):
        names = args.versions or evaluable_versions(store)
        prompt = args.system_prompt or DEFAULT_SYSTEM_PROMPT
        return evaluation_request(store, names, model, prompt, args.max_new_tokens)

    code = _run_request(args, make_request, "evaluate")
    if code == 0 and not args.json:
        _print_results(args)
    return code


def _print_results(args: argparse.Namespace) -> None:
    from medalign_desktop.store import Store

    with Store.open(existing_db(args), create=False) as store:
        results = store.evaluation_results()
    for result in results:
        shown = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
        say(f"{result.version:<16} " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))


def cmd_jobs(args: argparse.Namespace) -> int:
    from medalign_desktop.cli import job_queue

    return job_queue.run(args)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs a job."""
    from medalign_desktop.jobs.command import DEFAULT_LAUNCHER

    add_db_argument(parser)
    parser.add_argument("--model", help="base model folder (default: the configured base model)")
    parser.add_argument("--system-prompt", help="the system prompt answers are trained / given with")
    parser.add_argument(
        "--launcher",
        default=DEFAULT_LAUNCHER,
        help=f"how the program runs (default {DEFAULT_LAUNCHER!r}; e.g. 'torchrun --nproc_per_node 2')",
    )
    parser.add_argument("--json", action="store_true", help="one JSON event a line on stdout")
    parser.add_argument("--verbose", action="store_true", help="also show the program's log text")


def add_parsers(sub: Any) -> None:
    from medalign_desktop.jobs.evaluation import DEFAULT_MAX_NEW_TOKENS

    train = sub.add_parser("train", help="train a new model version (the app's job queue, in the foreground)")
    train.add_argument("kind", choices=TRAIN_KINDS)
    train.add_argument(
        "--parent", metavar="VERSION", help="continue from this version (default: the active one)"
    )
    train.add_argument(
        "--reward-model", metavar="VERSION", help="ppo: the reward model (default: the newest)"
    )
    train.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a training setting, e.g. max_steps=20"
    )
    train.add_argument(
        "--pairs-batch", action="append", type=int, metavar="ID", help="dpo/reward: an imported pair batch"
    )
    train.add_argument(
        "--prompts", default="all", choices=["all", "unannotated"], help="ppo: which questions"
    )
    train.add_argument("--max-prompts", type=int, metavar="N", help="ppo: at most N questions")
    add_job_options(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="evaluate versions on the held-out questions")
    evaluate.add_argument(
        "--versions", nargs="+", metavar="NAME", help="default: base and every answering version"
    )
    evaluate.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    add_job_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    jobs = sub.add_parser("jobs", help="the workspace's jobs: list, show, resume, cancel")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = actions.add_parser("list", help="every job, newest last")
    add_db_argument(listing)
    listing.add_argument("--json", action="store_true")
    for name, text in (
        ("show", "one job: settings, outcome, last metrics"),
        ("cancel", "stop a queued or running job"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id", type=int)
        add_db_argument(action)
        action.add_argument("--json", action="store_true")
    resume = actions.add_parser("resume", help="continue a stopped job from its last checkpoint")
    resume.add_argument("job_id", type=int)
    add_job_options(resume)
    jobs.set_defaults(func=cmd_jobs)
