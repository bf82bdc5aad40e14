"""Row layouts and file writers of the exports (see :mod:`export` for the formats and the guarantees).

A batch is a dict of columns (plain lists); a message-list column holds ``(question, answer)`` tuples and is
expanded by the writer: per row into JSON for JSONL, or straight into Arrow offsets and struct arrays for
Parquet and ``datasets`` (building per-row dicts for Arrow would cost more than the whole write).
Writers write into a temporary path that :mod:`export` renames; pyarrow and datasets are imported only when
such a format is written, so opening the store stays fast.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from medalign_desktop.store.deid import deidentify
from medalign_desktop.store.models import PreferencePair
from medalign_desktop.store.sft_records import SftRecord

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


def pair_batch(pairs: list[PreferencePair], layout: Layout, mask: Masker) -> dict[str, list]:
    batch: dict[str, list] = {name: [] for name in layout.names()}
    with_prompt = "prompt" in batch
    for pair in pairs:
        prompt = mask(pair.prompt)  # once per pair: it appears in both message lists
        if with_prompt:
            batch["prompt"].append(prompt)
        batch["id"].append(pair.key)
        batch["chosen"].append((prompt, mask(pair.chosen)))
        batch["rejected"].append((prompt, mask(pair.rejected)))
        batch["source"].append(pair.source)
        batch["annotator"].append(pair.annotator)
        batch["split"].append(pair.split)
        batch["safety_flags"].append(list(pair.safety_flags))
        batch["created_at"].append(pair.created_at)
        batch["chosen_version"].append(pair.chosen_version)
        batch["rejected_version"].append(pair.rejected_version)
    return batch


def sft_batch(records: list[SftRecord], layout: Layout, mask: Masker) -> dict[str, list]:
    batch: dict[str, list] = {name: [] for name in layout.names()}
    for record in records:
        batch["id"].append(record.key)
        batch["conversations"].append((mask(record.question), mask(record.answer)))
        batch["source"].append(record.source)
        batch["annotator"].append(record.annotator)
        batch["split"].append(record.split)
        batch["safety_flags"].append(list(record.safety_flags))
        batch["created_at"].append(record.created_at)
        batch["model_version"].append(record.model_version)
        batch["prompt_id"].append(record.prompt_id)
    return batch


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
    def __init__(self, tmp: Path, layout: Layout) -> None:
        super().__init__(tmp, layout)
        self.handle = open_private(tmp)

    def write(self, batch: dict[str, list]) -> None:
        layout, dumps = self.layout, json.dumps
        rk, tk = layout.role_key, layout.text_key
        q_role, a_role = layout.roles
        chats = set(layout.chats())
        names = layout.names()
        lines: list[str] = []
        for values in zip(*(batch[name] for name in names), strict=True):
            row: dict[str, Any] = {}
            for name, value in zip(names, values, strict=True):
                if name in chats:
                    value = [{rk: q_role, tk: value[0]}, {rk: a_role, tk: value[1]}]
                row[name] = value
            lines.append(dumps(row, ensure_ascii=False))
        if lines:
            self.handle.write(("\n".join(lines) + "\n").encode("utf-8"))

    def finish(self) -> None:
        _sync_close(self.handle)

    def abort(self) -> None:
        self.handle.close()


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
