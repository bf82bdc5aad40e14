"""The torch-free half of the model-folder check: config.json, the shard index and every safetensors header.

Reads only JSON and the first bytes of each weight file, so it takes milliseconds even for a 3B model. Every
problem is a ``ModelCheckError`` whose message names the file and says what is wrong, never a traceback.
Standard library only: the app (medalign_desktop/engine/model_folder.py) and the training programs
(training/lora.py) both use it through training/model_check.py, the one check.

A safetensors file is an 8-byte little-endian header length, a JSON header giving each tensor's dtype, shape and
byte range, then the data; the ranges must cover the data exactly, without gaps or overlaps (the safetensors
library refuses anything else).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

SHARD_INDEX = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
# Causal-LM families that share Llama's layout closely enough for LoRA on q/k/v/o/gate/up/down.
SUPPORTED_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"}
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


class ModelCheckError(ValueError):
    """A model folder that is missing, partial, corrupt or unsafe; the message names the file."""


@dataclass(frozen=True)
class TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    file: Path

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class FolderContents:
    """What the header-level check found: the folder's config, weight files and every tensor the loader reads."""

    path: Path
    config: dict
    model_type: str
    architecture: str
    weight_files: tuple[Path, ...]
    tensors: dict[str, TensorEntry]
    weights_bytes: int
    has_chat_template: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def n_parameters(self) -> int:
        return sum(entry.numel for entry in self.tensors.values())


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; ModelCheckError naming the file when it is missing, unreadable or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelCheckError(f"{path.parent}: {what} is missing ({path.name}).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCheckError(f"{path}: {what} cannot be read ({exc}).") from exc
    if not isinstance(data, dict):
        raise ModelCheckError(f"{path}: {what} does not hold a JSON object.")
    return data


def _short(name: object, limit: int = 80) -> str:
    text = str(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _entry_range(path: Path, name: str, entry: object) -> tuple[int, int]:
    """Validate one tensor entry of a header; returns its (begin, end) byte offsets."""

    def bad(what: str) -> ModelCheckError:
        return ModelCheckError(f"{path}: not a readable safetensors file (tensor '{_short(name)}' {what}).")

    if not isinstance(entry, dict):
        raise bad("is not a JSON object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in entry:
            raise bad(f"has no '{key}'")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise bad(f"has an unknown dtype {_short(dtype, 20)!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"has a shape that is not a list of sizes ({_short(shape, 40)})")
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):  # fmt: skip
        raise bad(f"has data_offsets that are not [begin, end] ({_short(offsets, 40)})")
    count = 1
    for dim in shape:
        count *= dim
    needed = (count * DTYPE_BITS[dtype] + 7) // 8
    if offsets[1] - offsets[0] != needed:
        raise bad(f"is {dtype} {shape}: {needed:,} bytes, but its offsets span {offsets[1] - offsets[0]:,}")
    return offsets[0], offsets[1]


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Return (header, end of the data section) after checking the header and that the file is whole."""

    def bad(what: str) -> ModelCheckError:
        return ModelCheckError(f"{path}: not a readable safetensors file ({what}).")

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise bad(f"only {size} bytes long")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len == 0:
                raise bad("its header length is 0")
            if header_len > MAX_HEADER_BYTES:
                raise bad(f"header length {header_len:,} bytes, more than the format's 100 MB")
            if 8 + header_len > size:
                raise bad(f"header length {header_len:,} is larger than the file, {size:,} bytes")
            raw = handle.read(header_len)
    except OSError as exc:
        raise ModelCheckError(f"{path}: cannot be read ({exc}).") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"its header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("its __metadata__ is not an object of strings")
    ranges = sorted(
        (*_entry_range(path, name, entry), name) for name, entry in header.items() if name != "__metadata__"
    )
    if not ranges:
        raise bad("its header lists no tensors")
    data_size, data_end = size - 8 - header_len, max(end for _, end, _ in ranges)
    if data_end > data_size:
        raise ModelCheckError(
            f"{path}: the file is truncated ({size:,} bytes, its header needs {8 + header_len + data_end:,}); "
            "copy the model again."
        )
    position, previous = 0, None
    for begin, end, name in ranges:
        if begin < position:
            raise bad(f"tensors '{_short(previous)}' and '{_short(name)}' overlap")
        if begin > position:
            raise bad(f"{begin - position:,} bytes before tensor '{_short(name)}' belong to no tensor")
        position, previous = end, name
    if position < data_size:
        raise bad(f"{data_size - position:,} bytes after the last tensor belong to no tensor")
    return header, position


def _allowed_roots(folder: Path) -> list[Path]:
    """Where a weight file may really live: inside the folder, or in the blobs of a Hugging Face cache snapshot
    (``models--x/snapshots/<rev>/`` holds links to ``models--x/blobs/``)."""
    root = folder.resolve()
    roots = [root]
    if root.parent.name == "snapshots":
        roots.append(root.parent.parent / "blobs")
    return roots


def resolve_inside(folder: Path, name: str, source: Path) -> Path:
    """``folder / name`` when ``name`` is a plain relative path that stays inside the folder (links included)."""
    if (
        not name or "\\" in name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute()
        or ".." in PurePosixPath(name).parts
    ):  # fmt: skip
        raise ModelCheckError(f"{source}: the weight file {_short(name)!r} points outside the model folder; refused.")
    path = folder / name
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in _allowed_roots(folder)):
        raise ModelCheckError(f"{source}: {name} is a link to {real}, outside the model folder; refused.")
    return path


def _shard_map(folder: Path, index_path: Path) -> dict[str, str]:
    index = read_json(index_path, "the shard index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise ModelCheckError(f"{index_path}: the shard index has no 'weight_map' object.")
    if not weight_map:
        raise ModelCheckError(f"{index_path}: the shard index's weight_map is empty.")
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard.endswith(".safetensors"):
            raise ModelCheckError(
                f"{index_path}: tensor '{_short(tensor)}' is mapped to {_short(shard)!r}, not a .safetensors file."
            )
    return weight_map


def weight_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The weight files transformers would read (the shard index's, else model.safetensors) and the index's
    tensor -> shard map (None without an index)."""
    index_path = folder / SHARD_INDEX
    if index_path.exists():
        weight_map = _shard_map(folder, resolve_inside(folder, SHARD_INDEX, folder))
        names = sorted(set(weight_map.values()))
        files = [resolve_inside(folder, name, index_path) for name in names]
        missing = [name for name, file in zip(names, files, strict=True) if not file.is_file()]
        if missing:
            raise ModelCheckError(f"{folder}: weight shards are missing: {', '.join(missing)}.")
        return files, weight_map
    if (folder / SINGLE_FILE).exists():
        return [resolve_inside(folder, SINGLE_FILE, folder)], None
    others = sorted(p.name for p in folder.glob("*.safetensors"))
    if others:
        raise ModelCheckError(
            f"{folder}: has {', '.join(others[:3])} but neither {SINGLE_FILE} nor {SHARD_INDEX}, "
            "the only weights transformers loads."
        )
    if list(folder.glob("*.bin")) or list(folder.glob("*.pt")):
        raise ModelCheckError(
            f"{folder}: only pickle weights (*.bin / *.pt) were found; MedAlign loads safetensors only. "
            "Convert the model to safetensors first."
        )
    if list(folder.glob("*.gguf")):
        raise ModelCheckError(f"{folder}: holds a GGUF file; import it with `medalign models import-gguf FILE`.")
    raise ModelCheckError(f"{folder}: no weights found (expected *.safetensors).")


def _tensors(files: list[Path], weight_map: dict[str, str] | None, folder: Path) -> tuple[dict, int]:
    tensors: dict[str, TensorEntry] = {}
    n_bytes = 0
    headers: dict[str, dict] = {}
    for file in files:
        label = file.relative_to(folder).as_posix()  # as the index names it
        header, data_end = read_safetensors_header(file)
        headers[label] = header
        n_bytes += data_end
        for name, entry in header.items():
            if name == "__metadata__" or (weight_map is not None and weight_map.get(name) != label):
                continue  # with an index, transformers reads each tensor from the shard the index names
            if name in tensors:
                raise ModelCheckError(f"{file}: tensor '{_short(name)}' is also in {tensors[name].file.name}.")
            tensors[name] = TensorEntry(entry["dtype"], tuple(entry["shape"]), file)
    if weight_map is not None:
        absent = [name for name, shard in weight_map.items() if name not in headers[shard]]
        if absent:
            raise ModelCheckError(
                f"{folder / SHARD_INDEX}: {len(absent)} tensor(s) are not in the shard the index names "
                f"({', '.join(_short(n) for n in absent[:3])}{' ...' if len(absent) > 3 else ''})."
            )
    return tensors, n_bytes


def inspect_model_folder(path: str | Path) -> FolderContents:
    """The header-level check (milliseconds): config, tokenizer file, chat template, shard index, headers."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelCheckError(f"{folder}: the model folder does not exist.")
    if not folder.is_dir():
        raise ModelCheckError(f"{folder}: is a file, not a model folder.")
    config = read_json(folder / "config.json", "the model configuration")
    model_type = config.get("model_type")
    if not model_type or not isinstance(model_type, str):
        raise ModelCheckError(f"{folder / 'config.json'}: has no 'model_type' field.")
    architectures = config.get("architectures") or [model_type]
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise ModelCheckError(f"{folder / 'config.json'}: 'architectures' is not a list of names.")
    notes = []
    if model_type not in SUPPORTED_MODEL_TYPES:
        notes.append(f"model type '{model_type}' has not been tested with MedAlign")
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise ModelCheckError(f"{folder}: the tokenizer is missing (expected tokenizer.json or tokenizer.model).")
    tok_config = folder / "tokenizer_config.json"
    has_template = (folder / "chat_template.jinja").exists() or (
        tok_config.exists() and "chat_template" in read_json(tok_config, "the tokenizer configuration")
    )
    if not has_template:
        notes.append("no chat template: questions are sent as plain text")
    files, weight_map = weight_files(folder)
    tensors, n_bytes = _tensors(files, weight_map, folder)
    return FolderContents(
        folder, config, model_type, architectures[0], tuple(files), tensors, n_bytes, has_template, tuple(notes)
    )
