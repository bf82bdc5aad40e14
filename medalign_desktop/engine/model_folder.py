"""Checks a model folder before anything heavy touches it: the app's face of training/model_check.py.

A model folder is a plain Hugging Face folder (``config.json``, tokenizer files, ``*.safetensors``),
e.g. Llama-3.2-3B-Instruct on local disk or the converted demo model. Loading a broken folder with
transformers gives a long traceback or, worse, silently random weights for missing tensors; checking it
first lets the app say exactly which file is missing or damaged. The rules live in training/ (the training
programs apply the same ones, and training never imports the app): the header-level part reads only JSON and
the safetensors headers (milliseconds, no torch); the complete part (the default) also compares every tensor
the architecture needs with the headers on torch's meta device and loads the tokenizer (~0.2 s for the demo
model once torch is imported). Each problem is a ModelFolderError whose message names the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medalign_desktop.engine.errors import ModelFolderError
from training import model_check, model_headers
from training.model_headers import SHARD_INDEX, SUPPORTED_MODEL_TYPES, TOKENIZER_FILES, ModelCheckError

__all__ = [
    "SHARD_INDEX",
    "SUPPORTED_MODEL_TYPES",
    "TOKENIZER_FILES",
    "ModelFolderInfo",
    "check_adapter_folder",
    "check_model_folder",
    "read_safetensors_header",
]


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


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """(header, end of the data section) of a safetensors file whose header and size were checked."""
    try:
        return model_headers.read_safetensors_header(Path(path))
    except ModelCheckError as exc:
        raise ModelFolderError(str(exc)) from exc


def check_model_folder(path: str | Path, *, complete: bool = True) -> ModelFolderInfo:
    """Validate a base-model folder; raise ModelFolderError naming the file and what is wrong.

    ``complete=False`` checks only the files and headers (milliseconds, torch not imported); the default also
    checks every tensor against the architecture and loads the tokenizer (see training/model_check.py)."""
    try:
        contents = model_check.check_model_folder(path, complete=complete)
    except ModelCheckError as exc:
        raise ModelFolderError(str(exc)) from exc
    return ModelFolderInfo(
        contents.path,
        contents.model_type,
        contents.architecture,
        contents.n_parameters,
        contents.weights_bytes,
        contents.weight_files,
        contents.has_chat_template,
        contents.notes,
    )


def check_adapter_folder(path: str | Path) -> Path:
    """Validate a LoRA adapter folder by training/model_check.py's rules (the folder, adapter_config.json a JSON
    object, adapter_model.safetensors with a whole header); raise ModelFolderError naming the file."""
    try:
        return model_check.check_adapter_folder(path)
    except ModelCheckError as exc:
        raise ModelFolderError(str(exc)) from exc
