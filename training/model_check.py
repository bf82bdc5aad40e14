"""The one model-folder check, for the app and the training programs alike.

``check_model_folder`` runs the header-level check of training/model_headers.py (milliseconds, no torch), then
checks the folder completely without loading a weight: it builds the model its config.json describes on
torch's meta device (no memory, ~20 ms once transformers has imported the architecture) and compares the
state-dict that model needs, name by name and shape by shape, with the tensors the safetensors headers hold;
and it loads the tokenizer. A copy missing tensors, weights that do not fit config.json, or a damaged
tokenizer is refused before anything heavy happens. ``from_pretrained_checked`` is the second guard, at load
time: tensors transformers reports missing, unexpected or mismatched are an error, never a random init.

torch and transformers are imported inside the functions: importing this module is instant.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from training.model_headers import (
    FolderContents,
    ModelCheckError,
    inspect_model_folder,
    read_json,
    read_safetensors_header,
)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
SHOWN = 5  # tensor names quoted in a message before "... and N more"
_passed: OrderedDict[str, None] = OrderedDict()  # fingerprints of folders that passed the complete check
_PASSED_LIMIT = 32
_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "vocab.json", "merges.txt",
)  # fmt: skip


def check_model_folder(path: str | Path, *, complete: bool = True) -> FolderContents:
    """Validate a base-model folder; raise ModelCheckError naming the file and what is wrong.

    ``complete=False`` stops after the headers (milliseconds, no torch); the default also checks that every
    tensor the architecture needs is there with its shape, and that the tokenizer loads."""
    contents = inspect_model_folder(path)
    if complete:
        key = _fingerprint(contents)
        if key not in _passed:
            check_tensors(contents)
            check_tokenizer(contents)
            _passed[key] = None
            while len(_passed) > _PASSED_LIMIT:
                _passed.popitem(last=False)
    return contents


def check_adapter_folder(path: str | Path, role: str = "Adapter") -> Path:
    """Validate a LoRA adapter folder; raise ModelCheckError whose message starts with ``role`` ("Parent
    adapter", "Reward adapter", ...) and names the file. The folder exists; adapter_config.json and
    adapter_model.safetensors are both there (all missing ones named at once); the config is a readable JSON
    object; the weights' safetensors header is whole (read_safetensors_header)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is a file, not an adapter folder" if folder.exists() else "does not exist"
        raise ModelCheckError(f"{role} folder {folder} {what}.")
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelCheckError(f"{role} folder {folder} is missing {', '.join(missing)}.")
    try:
        read_json(folder / ADAPTER_FILES[0], "the adapter configuration")
        read_safetensors_header(folder / ADAPTER_FILES[1])
    except ModelCheckError as exc:
        raise ModelCheckError(f"{role}: {exc}") from None
    return folder


def _fingerprint(contents: FolderContents) -> str:
    """What the complete check depends on: config, tensor names/dtypes/shapes, the tokenizer files' stat."""
    digest = hashlib.sha256(str(contents.path.resolve()).encode())
    digest.update(json.dumps(contents.config, sort_keys=True, default=str).encode())
    for name, entry in sorted(contents.tensors.items()):
        digest.update(f"{name}|{entry.dtype}|{entry.shape}".encode())
    for name in _TOKENIZER_FILES:
        file = contents.path / name
        if file.exists():
            stat = file.stat()
            digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f", ... and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _tensor_count(n: int) -> str:
    return f"{n} tensor{'s' if n != 1 else ''}"


def expected_tensors(folder: Path) -> tuple[dict[str, tuple[int, ...]], list[set[str]], Any]:
    """(name -> shape the model needs, groups of tied names, the meta-device model) for the folder's config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config_file = folder / "config.json"
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except Exception as exc:  # unknown model type, inconsistent sizes, a config transformers cannot build
        raise ModelCheckError(
            f"{config_file}: transformers cannot build the model it describes ({_one_line(exc)})."
        ) from exc
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    by_id: dict[int, set[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(param), set()).add(name)
    tied = [names for names in by_id.values() if len(names) > 1]
    for target, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
        tied.append({target, source})
    return shapes, tied, model


def _patterns(model: Any, attribute: str) -> list[re.Pattern]:
    return [re.compile(p) for p in (getattr(model, attribute, None) or [])]


def check_tensors(contents: FolderContents) -> None:
    """Every tensor the architecture needs is in the weights with its shape, and no tensor is foreign to it."""
    folder = contents.path
    if "quantization_config" in contents.config:
        return  # pre-quantised weights are packed; from_pretrained_checked guards them at load time
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping

    if get_checkpoint_conversion_mapping(contents.model_type):
        return  # transformers renames / fuses this family's tensors at load; the load guard checks them
    expected, tied, model = expected_tensors(folder)
    present = {name: entry for name, entry in contents.tensors.items()}
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and not any(name in expected for name in present):  # saved from the bare base model
        present = {f"{prefix}.{name}": entry for name, entry in present.items()}
    satisfied = {name for group in tied if group & present.keys() for name in group}
    ignore_missing = _patterns(model, "_keys_to_ignore_on_load_missing")
    ignore_unexpected = _patterns(model, "_keys_to_ignore_on_load_unexpected")
    missing = [
        name for name in expected
        if name not in present and name not in satisfied and not any(p.search(name) for p in ignore_missing)
    ]  # fmt: skip
    unexpected = [
        name for name in present
        if name not in expected and not name.endswith("rotary_emb.inv_freq")
        and not any(p.search(name) for p in ignore_unexpected)
    ]  # fmt: skip
    wrong = [
        f"{name} is {list(entry.shape)} in {entry.file.name}, the model needs {list(expected[name])}"
        for name, entry in present.items()
        if name in expected and entry.shape != expected[name]
    ]
    problems = []
    if missing:
        problems.append(f"{_tensor_count(len(missing))} the model needs are missing ({_names(missing)})")
    if wrong:
        problems.append(f"{_tensor_count(len(wrong))} with the wrong shape ({_names(wrong)})")
    if unexpected:
        problems.append(f"{_tensor_count(len(unexpected))} the model has no place for ({_names(unexpected)})")
    if problems:
        why = "the copy is incomplete" if missing and not (wrong or unexpected) else "the weights do not match config.json"
        raise ModelCheckError(f"{folder}: {'; '.join(problems)}; {why}.")


def check_tokenizer(contents: FolderContents) -> Any:
    """Load the tokenizer as the engine will, and check its ids fit the model's embedding table."""
    from transformers import AutoTokenizer

    folder = contents.path
    file = next((folder / n for n in ("tokenizer.json", "tokenizer.model") if (folder / n).exists()), folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        tokenizer("Check.")
    except Exception as exc:  # garbage JSON, a missing key, a vocabulary the backend refuses...
        raise ModelCheckError(f"{file}: the tokenizer cannot be loaded ({_one_line(exc)}).") from exc
    rows = _embedding_rows(contents)
    if rows is not None and len(tokenizer) > rows:
        raise ModelCheckError(
            f"{file}: the tokenizer has {len(tokenizer):,} tokens but the model's embedding table only {rows:,}; "
            "tokenizer and weights come from different models."
        )
    return tokenizer


def _embedding_rows(contents: FolderContents) -> int | None:
    for name, entry in contents.tensors.items():
        if name.endswith("embed_tokens.weight") and len(entry.shape) == 2:
            return entry.shape[0]
    vocab = contents.config.get("vocab_size")
    return vocab if isinstance(vocab, int) else None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_pretrained_checked(
    auto_class: Any,
    folder: str | Path,
    *,
    allow_missing: tuple[str, ...] = (),
    allow_unexpected: tuple[str, ...] = (),
    **kwargs: Any,
) -> Any:
    """``auto_class.from_pretrained(folder, **kwargs)``, refusing a model whose load left tensors randomly
    initialised (missing), ignored (unexpected) or mismatched. ``allow_*`` are name prefixes that may be
    (a reward model's fresh ``score.`` head; the unused ``lm_head.`` of a causal checkpoint)."""
    model, info = auto_class.from_pretrained(str(folder), output_loading_info=True, **kwargs)
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(allow_missing or ("\0",)))
    unexpected = sorted(
        k for k in info.get("unexpected_keys", ()) if not k.startswith(allow_unexpected or ("\0",))
    )
    mismatched = sorted(str(item[0]) for item in info.get("mismatched_keys", ()))
    problems = [f"{_tensor_count(len(missing))} missing ({_names(missing)})"] if missing else []
    if unexpected:
        problems.append(f"{_tensor_count(len(unexpected))} unused ({_names(unexpected)})")
    if mismatched:
        problems.append(f"{_tensor_count(len(mismatched))} of the wrong shape ({_names(mismatched)})")
    problems += [_one_line(message) for message in info.get("error_msgs", ())[:3]]
    if problems:
        del model
        raise ModelCheckError(
            f"{folder}: loading the weights left {'; '.join(problems)}; refused rather than answer with "
            "random weights."
        )
    return model
