"""Schema versions and the migrations between them.

The schema version lives in ``PRAGMA user_version`` (0 = empty file). ``MIGRATIONS[i]`` turns version ``i``
into version ``i + 1``; a later issue appends one :class:`Migration` and never edits an earlier one.

Opening a database:

- empty file: every step runs, in one transaction;
- older version: a backup copy ``<name>.bak-v<N>-<timestamp>`` is written next to it with SQLite's
  online backup API (consistent even with a WAL), then the missing steps run in one transaction, so a
  failed migration leaves the file exactly as it was;
- newer version (written by a newer app): refused with a message naming the file and both versions, and
  nothing is touched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from medalign_desktop.store.db import create_private_file, transaction
from medalign_desktop.store.errors import StoreError
from medalign_desktop.store.schema import v1, v2, v3, v4, v5


@dataclass(frozen=True)
class Migration:
    """One step: ``apply(db)`` runs inside the migration transaction and must not commit."""

    version: int  # the version this step produces
    description: str
    apply: Callable[[Database], None]


def _executing(statements: Callable[[], list[str]]) -> Callable[[Database], None]:
    """A migration step that runs the statements of one schema module, in order."""

    def apply(db: Database) -> None:
        for statement in statements():
            db.execute(statement)

    return apply


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "initial schema: prompts, generations, feedback, audit log, model versions, jobs",
        _executing(v1.v1_statements),
    ),
    Migration(2, "comparisons, imported preference pairs, import batch kinds", _executing(v2.v2_statements)),
    Migration(3, "reward-model scores of answers", _executing(v3.v3_statements)),
    Migration(
        4,
        "evaluation results of model versions, per-answer flags of blind reviews",
        _executing(v4.v4_statements),
    ),
    Migration(
        5, "staged imports: import_staging, import batch state and owner", _executing(v5.v5_statements)
    ),
]


def latest_version(steps: Sequence[Migration] | None = None) -> int:
    steps = MIGRATIONS if steps is None else steps
    return len(steps)


def user_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Database, path: Path, steps: Sequence[Migration] | None = None) -> Path | None:
    """Bring the database at ``path`` to the latest version; return the backup written, if any.

    ``steps`` defaults to the module's ``MIGRATIONS`` read at call time (tests append fake steps to it).
    """
    steps = MIGRATIONS if steps is None else steps
    _check_steps(steps)
    target = len(steps)
    found = user_version(db)
    if found > target:
        raise StoreError(
            f"{path} was written by a newer version of MedAlign Desktop (schema version {found}); "
            f"this version understands schema versions up to {target}. Update the application to open it."
        )
    if found == target:
        return None
    if found == 0:
        _refuse_foreign_database(db, path)
        backup = None
    else:
        backup = backup_database(db, path, found)
    _apply_steps(db, path, steps, found, target)
    return backup


def _check_steps(steps: Sequence[Migration]) -> None:
    for index, step in enumerate(steps, start=1):
        if step.version != index:
            raise StoreError(f"migration list out of order: step {index} claims version {step.version}")


def _refuse_foreign_database(db: Database, path: Path) -> None:
    """Version 0 with tables in it is somebody else's SQLite file: never write our schema into it."""
    tables = db.table_names()
    if tables:
        raise StoreError(
            f"{path} is a SQLite database but not a MedAlign one (it has tables {', '.join(tables[:5])} "
            "and no schema version); refusing to change it."
        )


def _apply_steps(db: Database, path: Path, steps: Sequence[Migration], found: int, target: int) -> None:
    step = None
    try:
        with transaction(db):
            for step in steps[found:target]:
                step.apply(db)
            db.execute(f"PRAGMA user_version = {int(target)}")
    except sqlite3.Error as exc:
        where = f"step to version {step.version} ({step.description})" if step else "migration"
        raise StoreError(
            f"Migrating {path} from schema version {found} to {target} failed in the {where}: {exc}. "
            "The file was left unchanged."
        ) from exc


def backup_path_for(path: Path, version: int, now: datetime | None = None) -> Path:
    """``<name>.bak-v<N>-<UTC timestamp>`` next to the database, never overwriting an earlier backup."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.bak-v{version}-{stamp}")
    counter = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak-v{version}-{stamp}-{counter}")
        counter += 1
    return candidate


def backup_database(db: Database, path: Path, version: int) -> Path:
    """Copy the live database with the online backup API (includes what is still in the WAL)."""
    target = backup_path_for(path, version)
    try:
        create_private_file(target)
        copy = sqlite3.connect(str(target))
        try:
            db.conn.backup(copy)
        finally:
            copy.close()
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"Cannot write the backup {target} before migrating {path} from schema version {version}: {exc}. "
            "The database was not changed."
        ) from exc
    return target
