"""Row layouts and file writers of the exports (see :mod:`export` for the formats and the guarantees).

A batch is a dict of columns (plain lists); a message-list column holds ``(question, answer)`` tuples and is
expanded by the writer: per row into JSON for JSONL, or straight into Arrow offsets and struct arrays for
Parquet and ``datasets`` (building per-row dicts for Arrow would cost more than the whole write).
Writers write into a temporary path that :mod:`export` renames; pyarrow and datasets are imported only when
such a format is written, so opening the store stays fast.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from json.encoder import encode_basestring as _escape  # the C escaper of json.dumps
from pathlib import Path
from typing import Any, BinaryIO

from medalign_desktop.store.deid import deidentify, manifest_section, reported_counts
from medalign_desktop.store.exports.sft_records import SftRecord
from medalign_desktop.store.rows import PreferencePair

FILE_MODE, DIR_MODE = 0o600, 0o700
_ROW_GROUP = 20_000  # Parquet rows per row group: fewer, larger groups read faster than one per batch


@dataclass(frozen=True)
class Layout:
    kind: str  # "pairs" or "sft"
    role_key: str
    text_key: str
    roles: tuple[str, str]  # (question role, answer role)
    columns: tuple[tuple[str, str], ...]  # (name, type) in output order: string, int64, strings or chat

    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def chats(self) -> list[str]:
        return [name for name, kind in self.columns if kind == "chat"]


_PROVENANCE = (("source", "string"), ("annotator", "string"), ("split", "string"),
               ("safety_flags", "strings"), ("created_at", "string"))  # fmt: skip
_PAIR_COLUMNS = (("id", "string"), ("chosen", "chat"), ("rejected", "chat"), *_PROVENANCE,
                 ("chosen_version", "string"), ("rejected_version", "string"))  # fmt: skip
_SFT_COLUMNS = (("id", "string"), ("conversations", "chat"), *_PROVENANCE,
                ("model_version", "string"), ("prompt_id", "int64"))  # fmt: skip


def layout_for(kind: str, prompt_column: bool = False) -> Layout:
    if kind == "sft":
        return Layout("sft", "from", "value", ("human", "gpt"), _SFT_COLUMNS)
    columns = ((("prompt", "string"),) if prompt_column else ()) + _PAIR_COLUMNS
    return Layout("pairs", "role", "content", ("user", "assistant"), columns)


class Masker:
    """De-identifies texts when enabled and keeps the running counts by kind."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.counts: Counter[str] = Counter()

    def __call__(self, text: str) -> str:
        if not self.enabled:
            return text
        masked, counts = deidentify(text)
        self.counts.update(counts)
        return masked

    def reported(self) -> dict[str, int]:
        """Counts for the report's ``n_masked``: empty when de-identification was off."""
        return reported_counts(self.counts) if self.enabled else {}

    def manifest(self) -> dict | None:
        """The manifest's "deidentification": classes scanned, counts per class, what is not guaranteed."""
        return manifest_section(self.counts) if self.enabled else None


def _provenance(records: list[PreferencePair] | list[SftRecord]) -> dict[str, list]:
    """The :data:`_PROVENANCE` columns, named alike on pairs and SFT records."""
    return {
        "source": [r.source for r in records],
        "annotator": [r.annotator for r in records],
        "split": [r.split for r in records],
        "safety_flags": [list(r.safety_flags) for r in records],
        "created_at": [r.created_at for r in records],
    }


def pair_batch(pairs: list[PreferencePair], layout: Layout, mask: Masker) -> dict[str, list]:
    """Columns of a batch of pairs; built column by column (one comprehension each is the fast way)."""
    prompts = [mask(p.prompt) for p in pairs] if mask.enabled else [p.prompt for p in pairs]
    chosen = [mask(p.chosen) for p in pairs] if mask.enabled else [p.chosen for p in pairs]
    rejected = [mask(p.rejected) for p in pairs] if mask.enabled else [p.rejected for p in pairs]
    batch = {
        "id": [p.key for p in pairs],
        "chosen": list(zip(prompts, chosen, strict=True)),
        "rejected": list(zip(prompts, rejected, strict=True)),
        **_provenance(pairs),
        "chosen_version": [p.chosen_version for p in pairs],
        "rejected_version": [p.rejected_version for p in pairs],
    }
    if "prompt" in layout.names():
        batch["prompt"] = prompts
    return batch


def sft_batch(records: list[SftRecord], layout: Layout, mask: Masker) -> dict[str, list]:
    return {
        "id": [r.key for r in records],
        "conversations": [(mask(r.question), mask(r.answer)) for r in records],
        **_provenance(records),
        "model_version": [r.model_version for r in records],
        "prompt_id": [r.prompt_id for r in records],
    }


def open_private(path: Path) -> BinaryIO:
    """A new file with mode 0600 from its first byte, whatever the umask; refuses to reuse a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def _sync_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


# -- writers -----------------------------------------------------------------------------------------------


class Writer:
    def __init__(self, tmp: Path, layout: Layout) -> None:
        self.tmp = tmp
        self.layout = layout

    def write(self, batch: dict[str, list]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Complete the output and fsync it."""
        raise NotImplementedError

    def abort(self) -> None:
        """Release open handles; the caller removes the temporary."""


class JsonLinesWriter(Writer):
    """One JSON object per line, as ``json.dumps(row, ensure_ascii=False)`` writes it (U+2028/9 escaped).

    Built column by column from pre-escaped strings rather than through ``json.dumps`` per row: a question
    appears in both message lists of a pair and is escaped once, and no per-row dicts are built. This is
    what keeps 100,000 pairs well under the 5 s budget.
    """

    def __init__(self, tmp: Path, layout: Layout) -> None:
        super().__init__(tmp, layout)
        self.handle = open_private(tmp)

    def write(self, batch: dict[str, list]) -> None:
        questions: dict[str, str] = {}  # escaped once per batch, used by every message-list column
        columns = [
            _json_column(self.layout, name, kind, batch[name], questions)
            for name, kind in self.layout.columns
        ]
        if columns and columns[0]:
            text = "".join("{" + ", ".join(fields) + "}\n" for fields in zip(*columns, strict=True))
            if "\u2028" in text or "\u2029" in text:  # line separators to Python's str.splitlines()
                text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            self.handle.write(text.encode("utf-8"))

    def finish(self) -> None:
        _sync_close(self.handle)

    def abort(self) -> None:
        self.handle.close()


def _json_column(
    layout: Layout, name: str, kind: str, values: list[Any], questions: dict[str, str]
) -> list[str]:
    """``"name": value`` for each row, values JSON-encoded as ``json.dumps(..., ensure_ascii=False)`` does."""
    key = _escape(name) + ": "
    if kind == "string":
        return [key + ("null" if v is None else _escape(v)) for v in values]
    if kind == "int64":
        return [key + ("null" if v is None else str(int(v))) for v in values]
    if kind == "strings":
        return [key + "[" + ", ".join(map(_escape, v)) + "]" for v in values]
    rk, tk = _escape(layout.role_key), _escape(layout.text_key)
    first = "[{" + f"{rk}: {_escape(layout.roles[0])}, {tk}: "
    second = "}, {" + f"{rk}: {_escape(layout.roles[1])}, {tk}: "
    escaped = [questions.get(q) or questions.setdefault(q, _escape(q)) for q, _ in values]
    return [key + first + q + second + _escape(a) + "}]" for q, (_, a) in zip(escaped, values, strict=True)]


def arrow_schema(layout: Layout) -> Any:
    import pyarrow as pa

    message = pa.struct([(layout.role_key, pa.string()), (layout.text_key, pa.string())])
    types = {"string": pa.string(), "int64": pa.int64(), "strings": pa.list_(pa.string()),
             "chat": pa.list_(message)}  # fmt: skip
    return pa.schema([(name, types[kind]) for name, kind in layout.columns])


def _chat_array(layout: Layout, values: list[tuple[str, str]], list_type: Any) -> Any:
    import pyarrow as pa

    n = len(values)
    texts: list[str | None] = [None] * (2 * n)
    texts[0::2] = [question for question, _ in values]
    texts[1::2] = [answer for _, answer in values]
    messages = pa.StructArray.from_arrays(
        [pa.array(list(layout.roles) * n, pa.string()), pa.array(texts, pa.string())],
        fields=list(list_type.value_type),
    )
    offsets = pa.array(range(0, 2 * n + 1, 2), pa.int32())
    return pa.ListArray.from_arrays(offsets, messages, type=list_type)


def arrow_batch(layout: Layout, schema: Any, batch: dict[str, list]) -> Any:
    import pyarrow as pa

    arrays = []
    for (name, kind), spec in zip(layout.columns, schema, strict=True):
        if kind == "chat":
            arrays.append(_chat_array(layout, batch[name], spec.type))
        else:
            arrays.append(pa.array(batch[name], spec.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class ParquetWriter(Writer):
    def __init__(self, tmp: Path, layout: Layout) -> None:
        import pyarrow.parquet as pq

        super().__init__(tmp, layout)
        self.schema = arrow_schema(layout)
        self.handle = open_private(tmp)
        self.writer = pq.ParquetWriter(self.handle, self.schema)
        self.pending: list[Any] = []
        self.pending_rows = 0

    def write(self, batch: dict[str, list]) -> None:
        record_batch = arrow_batch(self.layout, self.schema, batch)
        self.pending.append(record_batch)
        self.pending_rows += record_batch.num_rows
        if self.pending_rows >= _ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.writer.write_table(
                pa.Table.from_batches(self.pending, self.schema), row_group_size=_ROW_GROUP
            )
        self.pending, self.pending_rows = [], 0

    def finish(self) -> None:
        self._flush()
        self.writer.close()
        _sync_close(self.handle)

    def abort(self) -> None:
        try:
            self.writer.close()  # else its finaliser later writes a footer into the closed handle
        finally:
            self.handle.close()


class DatasetWriter(Writer):
    """A ``datasets`` folder (``save_to_disk``), built in memory from Arrow batches and saved at the end."""

    def __init__(self, tmp: Path, layout: Layout) -> None:
        super().__init__(tmp, layout)
        self.schema = arrow_schema(layout)
        self.batches: list[Any] = []
        tmp.mkdir(mode=DIR_MODE)
        os.chmod(tmp, DIR_MODE)  # files datasets creates inside are unreachable by others until tightened

    def write(self, batch: dict[str, list]) -> None:
        self.batches.append(arrow_batch(self.layout, self.schema, batch))

    def finish(self) -> None:
        import pyarrow as pa
        from datasets import Dataset
        from datasets.table import InMemoryTable
        from datasets.utils.tqdm import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        table = pa.Table.from_batches(self.batches, self.schema)
        quiet = are_progress_bars_disabled()
        disable_progress_bars()  # our progress callback reports; no bar on the terminal
        try:
            Dataset(InMemoryTable(table)).save_to_disk(str(self.tmp))
        finally:
            if not quiet:
                enable_progress_bars()
        for path in sorted(self.tmp.rglob("*")):
            os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())


WRITERS: dict[str, type[Writer]] = {
    "jsonl": JsonLinesWriter,
    "parquet": ParquetWriter,
    "datasets": DatasetWriter,
}
