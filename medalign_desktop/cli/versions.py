"""Model versions and the report from a terminal:

medalign versions list [--json]
medalign versions activate NAME         the version the app answers with next (as the Models page does)
medalign versions delete NAME           an unused version (not active, no children, no answers)
medalign versions export NAME DEST.tar  adapter + lineage + metrics + data manifest, with SHA-256s
medalign versions import FILE.tar [--name NEW] [--model DIR]
medalign report DEST.html|DEST.pdf      the comparison report (the Compare page's)
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medalign_desktop import paths
from medalign_desktop.cli.common import add_db_argument, existing_db, say
from medalign_desktop.cli.progress import TerminalReporter


def _version(store, name: str):
    for version in store.list_model_versions():
        if version.name == name:
            return version
    known = ", ".join(v.name for v in store.list_model_versions()) or "none yet"
    raise ValueError(f"No model version named {name!r} (there are: {known}).")


def cmd_list(args: argparse.Namespace, store) -> int:
    versions = store.list_model_versions()
    names = {v.id: v.name for v in versions}
    if args.json:
        for version in versions:
            TerminalReporter().json({**asdict(version), "parent": names.get(version.parent_id)})
        return 0
    if not versions:
        say("No model versions yet: the base model answers. `medalign train hitl` makes the first.")
    for v in versions:
        accuracy = v.metrics.get("eval_accuracy", v.metrics.get("eval_loss"))
        shown = f"{accuracy:.4g}" if isinstance(accuracy, int | float) else ""
        parent = names.get(v.parent_id, "base")
        active = "*" if v.is_active else " "
        say(
            f"{active} {v.name:<16} {v.kind:<7} from {parent:<14} job {v.job_id or '-':<5} {v.created_at}  {shown}"
        )
    return 0


def cmd_activate(args: argparse.Namespace, store) -> int:
    version = _version(store, args.name)
    store.set_active_model_version(version.id)
    say(f"{version.name} is the active version: the app answers with it from its next start or reload.")
    return 0


def cmd_delete(args: argparse.Namespace, store) -> int:
    version = _version(store, args.name)
    store.delete_model_version(version.id)
    say(f"Deleted {version.name} (its adapter files stay in {version.adapter_path}).")
    return 0


def cmd_export(args: argparse.Namespace, store) -> int:
    from medalign_desktop.jobs.bundle import export_bundle

    path = export_bundle(store, args.name, Path(args.dest).expanduser())
    say(f"Wrote {args.name} to {path} ({path.stat().st_size / 1e6:.1f} MB).")
    return 0


def cmd_import(args: argparse.Namespace, store) -> int:
    from medalign_desktop.cli.jobs import base_model
    from medalign_desktop.jobs.bundle import import_bundle

    imported = import_bundle(store, Path(args.file).expanduser(), base_model(args), rename=args.name)
    say(
        f"Imported {imported.name} (adapter in {imported.adapter_path}); `medalign versions activate {imported.name}` uses it."
    )
    for note in imported.notes:
        say(f"note: {note}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from medalign_desktop.store import Store

    command = {
        "list": cmd_list, "activate": cmd_activate, "delete": cmd_delete, "export": cmd_export, "import": cmd_import,
    }[args.versions_command]  # fmt: skip
    if args.versions_command == "import":  # a new workstation's first version may make its workspace
        store = Store.open(Path(args.db).expanduser() if args.db else paths.default_database_path())
    else:
        store = Store.open(existing_db(args), create=False)
    with store:
        return command(args, store)


def write_report_file(db: Path, dest: Path) -> Path:
    """The comparison report of ``db``'s versions as HTML (report/, no Qt) or PDF (Qt's text layout,
    offscreen: no display needed), chosen by ``dest``'s suffix."""
    import os

    from medalign_desktop.report import render_html, report_data, write_report
    from medalign_desktop.store import Store

    if dest.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise ValueError(f"{dest}: the report is written as .html or .pdf")
    with Store.open(db, create=False) as store:
        if dest.suffix.lower() != ".pdf":
            return write_report(store, dest)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QGuiApplication

        from medalign_desktop.ui.compare.report_pdf import write_pdf

        _app = QGuiApplication.instance() or QGuiApplication(["medalign"])
        return write_pdf(render_html(report_data(store)), dest)


def cmd_report(args: argparse.Namespace) -> int:
    dest = write_report_file(existing_db(args), Path(args.dest).expanduser())
    say(f"Wrote the report to {dest}")
    return 0


def add_parsers(sub: Any) -> None:
    versions = sub.add_parser("versions", help="model versions: list, activate, delete, export, import")
    actions = versions.add_subparsers(dest="versions_command", required=True)
    listing = actions.add_parser("list", help="every version (* the active one)")
    listing.add_argument("--json", action="store_true")
    add_db_argument(listing)
    for name, text in (("activate", "answer with this version"), ("delete", "remove an unused version")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
        add_db_argument(action)
    export = actions.add_parser("export", help="a bundle to install on another workstation")
    export.add_argument("name")
    export.add_argument("dest", help="the bundle file to write (NAME.tar)")
    add_db_argument(export)
    imp = actions.add_parser("import", help="install a version bundle (checked first)")
    imp.add_argument("file")
    imp.add_argument("--name", help="register it under this name instead")
    imp.add_argument("--model", help="this workstation's base model folder (default: the configured one)")
    add_db_argument(imp)
    versions.set_defaults(func=cmd_versions)

    report = sub.add_parser("report", help="the comparison report of the versions, as HTML or PDF")
    report.add_argument("dest", help="DEST.html or DEST.pdf")
    add_db_argument(report)
    report.set_defaults(func=cmd_report)
