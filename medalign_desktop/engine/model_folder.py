"""Checks a model folder before anything heavy touches it.

A model folder is a plain Hugging Face folder (``config.json``, tokenizer files, ``*.safetensors``),
e.g. Llama-3.2-3B-Instruct on local disk or the converted demo model. Loading a broken folder with
transformers gives a long traceback or, worse, silently random weights for missing tensors; checking it
first lets the app say exactly which file is missing or damaged. The check reads only JSON and the
safetensors headers, so it takes milliseconds even for a 3B model.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from medalign_desktop.engine.errors import ModelFolderError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
SHARD_INDEX = "model.safetensors.index.json"
# Causal-LM families that share Llama's layout closely enough for LoRA on q/k/v/o/gate/up/down.
SUPPORTED_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"}


@dataclass(frozen=True)
class ModelFolderInfo:
    path: Path
    model_type: str
    architecture: str
    n_parameters: int
    weights_bytes: int
    weight_files: tuple[Path, ...]
    has_chat_template: bool
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        billions = self.n_parameters / 1e9
        size = f"{billions:.2f} B" if billions >= 1 else f"{self.n_parameters / 1e6:.0f} M"
        return (
            f"{self.path.name}: {self.architecture}, {size} parameters, {self.weights_bytes / 2**20:,.0f} MiB"
        )


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path.parent}: {what} is missing ({path.name}).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{path}: {what} cannot be read ({exc}).") from exc
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: {what} does not hold a JSON object.")
    return data


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Return (header, end of the data section) and check the file is not truncated.

    The format is an 8-byte little-endian header length, a JSON header giving each tensor's byte range,
    then the data. A file cut short by an interrupted copy has a data section shorter than the header says.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length is larger than the file")
            header = json.loads(handle.read(header_len))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{path}: not a readable safetensors file ({exc}).") from exc
    data_end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + data_end > size:
        raise ModelFolderError(
            f"{path}: the file is truncated ({size:,} bytes, its header needs {8 + header_len + data_end:,}); "
            "copy the model again."
        )
    return header, data_end


def _weight_files(folder: Path) -> list[Path]:
    index_path = folder / SHARD_INDEX
    if index_path.exists():
        index = _read_json(index_path, "the shard index")
        names = sorted(set(index.get("weight_map", {}).values()))
        missing = [n for n in names if not (folder / n).exists()]
        if missing:
            raise ModelFolderError(f"{folder}: weight shards are missing: {', '.join(missing)}.")
        return [folder / n for n in names]
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    if list(folder.glob("*.bin")) or list(folder.glob("*.pt")):
        raise ModelFolderError(
            f"{folder}: only pickle weights (*.bin / *.pt) were found; MedAlign loads safetensors only. "
            "Convert the model to safetensors first."
        )
    if list(folder.glob("*.gguf")):
        raise ModelFolderError(
            f"{folder}: holds a GGUF file; import it with `medalign models import-gguf FILE`."
        )
    raise ModelFolderError(f"{folder}: no weights found (expected *.safetensors).")


def check_model_folder(path: str | Path) -> ModelFolderInfo:
    """Validate a base-model folder; raise ModelFolderError naming the path and what is missing."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelFolderError(f"{folder}: the model folder does not exist.")
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: is a file, not a model folder.")
    config = _read_json(folder / "config.json", "the model configuration")
    model_type = config.get("model_type")
    if not model_type:
        raise ModelFolderError(f"{folder / 'config.json'}: has no 'model_type' field.")
    notes = []
    if model_type not in SUPPORTED_MODEL_TYPES:
        notes.append(f"model type '{model_type}' has not been tested with MedAlign")
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise ModelFolderError(
            f"{folder}: the tokenizer is missing (expected tokenizer.json or tokenizer.model)."
        )
    tok_config = folder / "tokenizer_config.json"
    has_template = (folder / "chat_template.jinja").exists() or (
        tok_config.exists() and "chat_template" in _read_json(tok_config, "the tokenizer configuration")
    )
    if not has_template:
        notes.append("no chat template: questions are sent as plain text")
    n_params, n_bytes = 0, 0
    files = _weight_files(folder)
    for file in files:
        header, data_end = read_safetensors_header(file)
        n_bytes += data_end
        for name, tensor in header.items():
            if name != "__metadata__":
                count = 1
                for dim in tensor["shape"]:
                    count *= dim
                n_params += count
    architecture = (config.get("architectures") or [model_type])[0]
    return ModelFolderInfo(
        folder, model_type, architecture, n_params, n_bytes, tuple(files), has_template, tuple(notes)
    )


def check_adapter_folder(path: str | Path) -> Path:
    """Validate a LoRA adapter folder (adapter_config.json + adapter_model.safetensors)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: the adapter folder does not exist.")
    _read_json(folder / "adapter_config.json", "the adapter configuration")
    weights = folder / "adapter_model.safetensors"
    if not weights.exists():
        raise ModelFolderError(f"{folder}: adapter weights are missing (adapter_model.safetensors).")
    read_safetensors_header(weights)
    return folder
