"""What every command shares: its one line of output, the database it works on, a progress line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medalign_desktop import paths


def say(message: str) -> None:
    print(message, flush=True)


def add_db_argument(parser: Any) -> None:
    parser.add_argument("--db", help=f"database file (default {paths.default_database_path()})")


def existing_db(args: argparse.Namespace) -> Path:
    """The database a reading command uses; it must exist (opening would create an empty one)."""
    db = (Path(args.db) if args.db else paths.default_database_path()).expanduser()
    if not db.is_file():
        raise ValueError(f"No database at {db} (check the path; `medalign import` creates one)")
    return db


def progress_line(label: str):
    """A progress callback that rewrites one line on stderr (stdout keeps only the result)."""

    last: list[tuple[int, int]] = []

    def show(done: int, total: int) -> None:
        if last and last[-1] == (done, total):
            return  # the final report repeats the last batch's
        last[:] = [(done, total)]
        end = "\n" if done >= total else ""
        print(f"\r{label} {done:,}/{total:,}", end=end, file=sys.stderr, flush=True)

    return show
