"""Version bundles: a model version trained on one machine (the GPU server) installed on another (a workstation).

    NAME.tar
      bundle.json          format, the version (name, kind, metrics, data size, created), its lineage (the
                           chain of parents by name and kind), the base model it was trained on (folder name
                           and the SHA-256 of its config.json), and the SHA-256 of every file below
      adapter/...          the LoRA adapter folder as the version registered it
      data_manifest.json   the job's snapshot.json: which verdicts, pairs and questions it learned from

``import_bundle`` checks before it registers anything: the format, every file's SHA-256, that no member
escapes the bundle, and that the bundle's base model is the workstation's (a bundle for another base model is
refused, both named). The adapter is copied into ``<workspace>-jobs/imported/NAME/`` and registered under its
own name (or ``rename``), with its lineage's parent if this workspace has a version of that name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalign_desktop.jobs.job_files import DIR_MODE, FILE_MODE, jobs_folder, private_dir
from medalign_desktop.store import Store
from training.job_folder import SNAPSHOT_FILE

FORMAT = "medalign-version-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
ADAPTER_DIR = "adapter"
DATA_MANIFEST = "data_manifest.json"


class BundleError(ValueError):
    """The bundle cannot be written or installed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ImportedVersion:
    name: str
    version_id: int
    adapter_path: Path
    notes: tuple[str, ...]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_model_identity(model_dir: str | Path) -> dict[str, str]:
    """What says two base models are the same: the folder's name and its config.json's SHA-256."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise BundleError(f"{model_dir} is not a model folder (it has no config.json).")
    return {"name": model_dir.name, "config_sha256": sha256_of(config)}


def _lineage(store: Store, version) -> list[dict[str, Any]]:
    by_id = {v.id: v for v in store.list_model_versions()}
    chain, current = [], by_id.get(version.parent_id)
    while current is not None:
        chain.append({"name": current.name, "kind": current.kind})
        current = by_id.get(current.parent_id)
    return chain


def export_bundle(store: Store, name: str, dest: str | Path) -> Path:
    """Write version ``name`` to the tar file ``dest`` (replaced atomically); returns its path."""
    version = next((v for v in store.list_model_versions() if v.name == name), None)
    if version is None:
        raise BundleError(f"No model version named {name!r}.")
    adapter = Path(version.adapter_path or "")
    if not version.adapter_path or not adapter.is_dir():
        raise BundleError(f"Version {name!r} has no adapter folder on this machine ({adapter}).")
    if not version.base_model or not Path(version.base_model).is_dir():
        raise BundleError(f"Version {name!r}'s base model folder is missing ({version.base_model}).")
    members = {
        f"{ADAPTER_DIR}/{p.relative_to(adapter).as_posix()}": p
        for p in sorted(adapter.rglob("*"))
        if p.is_file()
    }
    job = store.get_job(version.job_id) if version.job_id else None
    snapshot = Path(job.job_dir) / SNAPSHOT_FILE if job and job.job_dir else None
    if snapshot is not None and snapshot.is_file():
        members[DATA_MANIFEST] = snapshot
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "version": {
            "name": version.name, "kind": version.kind, "metrics": version.metrics, "data_size": version.data_size,
            "created_at": version.created_at,
        },
        "lineage": _lineage(store, version),
        "base_model": base_model_identity(version.base_model),
        "job": {"id": job.id, "kind": job.kind, "config": job.config} if job else None,
        "files": {member: sha256_of(path) for member, path in members.items()},
    }  # fmt: skip
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        with tarfile.open(temporary, "w") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode())
            for member, path in members.items():
                tar.add(path, arcname=member, recursive=False)
        temporary.replace(dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return dest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    tar.addfile(info, io.BytesIO(data))


def read_manifest(folder: Path, source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{source} is not a MedAlign version bundle ({MANIFEST}: {exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{source} is not a MedAlign version bundle ({MANIFEST} has no format {FORMAT!r}).")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{source}: bundle format {manifest.get('format_version')} is not {FORMAT_VERSION}; update MedAlign."
        )
    return manifest


def _check_files(folder: Path, manifest: dict[str, Any], source: Path) -> None:
    files = manifest.get("files") or {}
    for member, expected in files.items():
        path = folder / member
        if not path.is_file():
            raise BundleError(f"{source}: {member} is listed in {MANIFEST} but missing.")
        if sha256_of(path) != expected:
            raise BundleError(f"{source}: {member} does not match its SHA-256 (damaged or changed).")
    if not any(m.startswith(f"{ADAPTER_DIR}/") for m in files):
        raise BundleError(f"{source} holds no adapter.")


def _check_base_model(manifest: dict[str, Any], base_model: str | Path, source: Path) -> None:
    theirs, ours = manifest.get("base_model") or {}, base_model_identity(base_model)
    if theirs.get("name") != ours["name"] or theirs.get("config_sha256") != ours["config_sha256"]:
        raise BundleError(
            f"{source} was trained on the base model {theirs.get('name')!r}, but this workstation's base model is "
            f"{ours['name']!r} ({base_model}); install it on a workstation with that model."
        )


def import_bundle(
    store: Store, source: str | Path, base_model: str | Path, *, rename: str | None = None
) -> ImportedVersion:
    """Check ``source`` and register its version (``rename``: under that name); nothing changes if a check fails."""
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="medalign-bundle-") as scratch:
        folder = Path(scratch)
        try:
            with tarfile.open(source, "r:*") as tar:
                tar.extractall(folder, filter="data")  # refuses absolute paths, links out, devices
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"{source} cannot be read as a tar file: {exc}") from None
        manifest = read_manifest(folder, source)
        _check_files(folder, manifest, source)
        _check_base_model(manifest, base_model, source)
        record = manifest["version"]
        name = rename or record["name"]
        if any(v.name == name for v in store.list_model_versions()):
            raise BundleError(
                f"This workspace already has a version named {name!r}; import it with --name NEW."
            )
        target = jobs_folder(store.path) / "imported" / name
        if target.exists():
            raise BundleError(f"{target} exists already; move it away or import under another --name.")
        private_dir(target.parent)
        shutil.copytree(folder, target)
        _make_private(target)  # a bundle's own modes may be 0644: clinical provenance stays the user's
    try:
        return _register(store, manifest, name, target, str(base_model))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # nothing registered: leave nothing behind
        raise


def _make_private(folder: Path) -> None:
    os.chmod(folder, DIR_MODE)
    for path in folder.rglob("*"):
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def _register(
    store: Store, manifest: dict[str, Any], name: str, target: Path, base_model: str
) -> ImportedVersion:
    record, lineage = manifest["version"], manifest.get("lineage") or []
    local = {v.name: v for v in store.list_model_versions()}
    parent = local.get(lineage[0]["name"]) if lineage else None
    notes = [] if parent or not lineage else [f"its parent {lineage[0]['name']!r} is not in this workspace"]
    metrics = dict(record.get("metrics") or {})
    version_id = store.add_model_version(
        name, record["kind"], parent_id=parent.id if parent else None, base_model=base_model,
        adapter_path=str(target / ADAPTER_DIR), data_size=record.get("data_size"), metrics=metrics,
    )  # fmt: skip
    return ImportedVersion(name, version_id, target / ADAPTER_DIR, tuple(notes))
