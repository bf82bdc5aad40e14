"""Readers for question files: they turn a file into numbered raw records, one format each.

A reader never raises for one bad record: it yields a :class:`RawItem` carrying the problem, so the
importer can report every bad line and still import the rest. Whole-file problems (missing, unknown
format, unreadable) raise :class:`StoreImportError` naming the file. Heavy libraries (pyarrow,
datasets) are imported only when such a file is read, so opening the store stays fast.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalign_desktop.store.errors import StoreImportError
from medalign_desktop.store.imports.encodings import detect_encoding
from medalign_desktop.store.imports.records import QUESTION_FIELDS, SPLIT_ALIASES

DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
TABLE_COLUMNS = (*QUESTION_FIELDS, "conversations")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RawItem:
    """One unit read from the file: a record, a problem, or an empty line."""

    line: int  # 1-based line (text files) or row (tables)
    done: int  # progress units consumed so far
    record: Any = None
    field: str | None = None
    problem: str | None = None
    split_hint: str | None = None  # e.g. from a DatasetDict's split name
    empty: bool = False


def question_columns_problem(columns: list[str]) -> str | None:
    """Why a table cannot hold questions (None: it can)."""
    if any(name in columns for name in TABLE_COLUMNS):
        return None
    found = ", ".join(columns[:12]) or "none"
    return f"no question column (expected one of {', '.join(TABLE_COLUMNS)}; found {found})"


# A table's column names -> why records of the wanted kind cannot be in it, or None.
ColumnCheck = Callable[[list[str]], str | None]


class Reader:
    format = "?"

    def __init__(self, path: Path, columns_problem: ColumnCheck = question_columns_problem) -> None:
        self.path = path
        self.total = 0  # progress units (lines for text files, rows for tables)
        self.columns_problem = columns_problem

    def __iter__(self) -> Iterator[RawItem]:
        raise NotImplementedError

    def fail(self, message: str, exc: BaseException | None = None) -> StoreImportError:
        detail = f": {exc}" if exc is not None else ""
        return StoreImportError(f"Cannot import {self.path}: {message}{detail}")


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


class JsonLinesReader(Reader):
    format = "jsonl"

    def __iter__(self) -> Iterator[RawItem]:
        encoding = detect_encoding(self.path)
        self.total = _count_lines(self.path)
        if encoding.startswith("utf-8"):
            with self.path.open("rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    yield self._item(number, raw)
            return
        with self.path.open("r", encoding=encoding, newline="") as text:  # UTF-16 / UTF-32 with BOM
            for number, line in enumerate(text, start=1):
                yield self._item(number, line.encode("utf-8", "surrogatepass"))

    def _item(self, number: int, raw: bytes) -> RawItem:
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")  # so JSON error columns refer to this line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return RawItem(number, number, problem=f"not valid UTF-8 ({exc.reason} at byte {exc.start + 1})")
        if not text.strip():
            return RawItem(number, number, empty=True)
        try:
            return RawItem(number, number, record=json.loads(text))
        except json.JSONDecodeError as exc:
            return RawItem(number, number, problem=f"not valid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            return RawItem(number, number, problem="not valid JSON: nested too deeply")


class JsonArrayReader(Reader):
    """A ``.json`` file holding one array of records (numbered by position, from 1)."""

    format = "json"

    def __iter__(self) -> Iterator[RawItem]:
        encoding = detect_encoding(self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8-sig" if encoding == "utf-8" else encoding))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail("not a valid JSON file", exc) from exc
        if not isinstance(data, list):
            raise self.fail("expected a JSON array of records (or one JSON object per line)")
        self.total = len(data)
        for number, record in enumerate(data, start=1):
            yield RawItem(number, number, record=record)


def _check_columns(reader: Reader, columns: list[str]) -> None:
    problem = reader.columns_problem(columns)
    if problem is not None:
        raise reader.fail(problem)


class CsvReader(Reader):
    """Strict CSV: every record has exactly the header's number of cells, and every quote is closed.

    A record with the wrong number of cells is reported with the physical line it starts on, and the other
    rows are imported (record boundaries are still clear). Broken quoting is different: an unclosed quote
    swallows the newlines after it, so where the following records begin is unknown; the whole file is
    refused, naming the line where the broken record starts.
    """

    format = "csv"

    def __iter__(self) -> Iterator[RawItem]:
        encoding = detect_encoding(self.path)
        self.total = _count_lines(self.path)
        # Long answers exceed csv's default 128 KiB field limit; raise it for this process.
        csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
        encoding = "utf-8-sig" if encoding == "utf-8" else encoding
        try:
            with self.path.open("r", encoding=encoding, newline="") as handle:
                yield from self._rows(csv.reader(handle, strict=True))
        except UnicodeDecodeError as exc:
            raise self.fail("not valid UTF-8", exc) from exc

    def _rows(self, reader: Any) -> Iterator[RawItem]:
        """csv.reader rather than DictReader: DictReader silently drops empty rows and shifts line numbers."""
        header = self._next(reader, 1) or []
        _check_columns(self, header)
        start = reader.line_num + 1
        while (cells := self._next(reader, start)) is not None:
            if not any(cell.strip() for cell in cells):
                yield RawItem(start, reader.line_num, empty=True)
            elif len(cells) != len(header):
                problem = f"has {len(cells)} cells but the header has {len(header)}"
                if reader.line_num > start:
                    problem += f" (the record runs over lines {start}-{reader.line_num}: check its quotes)"
                yield RawItem(start, reader.line_num, problem=problem)
            else:
                # Empty cells mean "no value" in CSV.
                record = {name: (cells[i] if cells[i] != "" else None) for i, name in enumerate(header)}
                yield RawItem(start, reader.line_num, record=record)
            start = reader.line_num + 1

    def _next(self, reader: Any, start: int) -> list[str] | None:
        try:
            return next(reader, None)
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                why = 'a quoted field opened on this line is never closed (its " runs to the end of the file)'
            else:
                why = f"broken quoting ({exc})"
            raise StoreImportError(
                f"Cannot import {self.path}: line {start}: {why}. Where the records after it begin is "
                "unclear, so nothing was imported; fix the quotes and import the file again."
            ) from exc


class ParquetReader(Reader):
    format = "parquet"

    def __iter__(self) -> Iterator[RawItem]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table_file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise self.fail("not a readable Parquet file", exc) from exc
        _check_columns(self, table_file.schema_arrow.names)
        self.total = table_file.metadata.num_rows
        number = 0
        for batch in table_file.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                number += 1
                yield RawItem(number, number, record=record)


class DatasetFolderReader(Reader):
    """A folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict of splits)."""

    format = "datasets"

    def __iter__(self) -> Iterator[RawItem]:
        try:
            from datasets import Dataset, load_from_disk
        except ImportError as exc:  # pragma: no cover - datasets is a dependency
            raise self.fail("the 'datasets' package is not installed", exc) from exc
        try:
            loaded = load_from_disk(str(self.path))
        except Exception as exc:  # datasets raises many kinds; any of them means "unreadable"
            raise self.fail("not a readable datasets folder", exc) from exc
        parts = [(None, loaded)] if isinstance(loaded, Dataset) else list(loaded.items())
        for _, part in parts:
            _check_columns(self, list(part.column_names))
        self.total = sum(len(part) for _, part in parts)
        number = 0
        for name, part in parts:
            hint = SPLIT_ALIASES.get(name.lower()) if name else None
            for record in part:
                number += 1
                yield RawItem(number, number, record=record, split_hint=hint)


def _is_dataset_folder(path: Path) -> bool:
    return any((path / marker).is_file() for marker in DATASET_MARKERS)


def _starts_with_bracket(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096)
    for bom, codec in (
        ("\ufeff".encode("utf-16-le"), "utf-16-le"),
        ("\ufeff".encode("utf-16-be"), "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[2:].decode(codec, "ignore").lstrip(" \t\r\n").startswith("[")
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def open_reader(path: Path, columns_problem: ColumnCheck = question_columns_problem) -> Reader:
    """Pick the reader for ``path`` from its extension (or, for a folder, its datasets marker files).

    ``columns_problem`` checks a table's columns before its first row (default: questions).
    """
    if not path.exists():
        raise StoreImportError(f"Cannot import {path}: no such file or folder")
    if path.is_dir():
        if _is_dataset_folder(path):
            return DatasetFolderReader(path, columns_problem)
        raise StoreImportError(
            f"Cannot import {path}: the folder is not a datasets folder saved with save_to_disk "
            f"(none of {', '.join(DATASET_MARKERS)} found)"
        )
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonLinesReader(path, columns_problem)
    if suffix == ".json":
        return (
            JsonArrayReader(path, columns_problem)
            if _starts_with_bracket(path)
            else JsonLinesReader(path, columns_problem)
        )
    if suffix == ".csv":
        return CsvReader(path, columns_problem)
    if suffix in (".parquet", ".pq"):
        return ParquetReader(path, columns_problem)
    raise StoreImportError(
        f"Cannot import {path}: unknown format '{path.suffix or path.name}' "
        "(expected .jsonl, .json, .csv, .parquet, or a folder saved with datasets' save_to_disk)"
    )


def source_sha256(path: Path) -> str:
    """SHA-256 of the file, or of a folder's files (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file is not path:
            digest.update(str(file.relative_to(path)).encode("utf-8") + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
