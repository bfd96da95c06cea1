"""The model registry on disk: ``<model_dir>/<name>/<version>/`` plus a ``CURRENT`` pointer.

A version directory holds the artifacts (XGBoost ``.ubj``, safetensors, JSON) and a
``manifest.json`` with the sha256 of every file. Publishing writes into a hidden temp
directory, fsyncs, renames it into place, then replaces ``CURRENT`` with ``os.replace``, so
a reader sees either the old or the new version, never a half-written one.

A walk-forward registry (``python -m services.trainer evaluate --registry``) keeps every
fold's version, each with the sessions it is valid for in its manifest (``valid_for``:
``after`` its training end, ``through`` the next fold's): ``valid_version`` picks the one
for a session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.logs import get_logger

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
KEEP_VERSIONS = 3

log = get_logger("registry")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: str
    path: Path
    created: bool  # False when that exact version was already in the registry


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def model_root(model_dir: Path, name: str) -> Path:
    return Path(model_dir) / name


def current_version(model_dir: Path, name: str) -> str | None:
    """The live version of ``name`` (one small file read: cheap enough to poll)."""
    try:
        return (model_root(model_dir, name) / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def read_manifest(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / MANIFEST).read_text())


def list_versions(model_dir: Path, name: str) -> list[dict[str, Any]]:
    """Every complete version of ``name``, oldest first, with ``current`` marked."""
    root = model_root(model_dir, name)
    if not root.is_dir():
        return []
    live = current_version(model_dir, name)
    versions = []
    for child in root.iterdir():
        if child.name.startswith(".") or not (child / MANIFEST).is_file():
            continue
        manifest = read_manifest(child)
        versions.append(
            {
                "version": child.name,
                "created_at": manifest.get("created_at"),
                "training_window": manifest.get("training_window"),
                "valid_for": manifest.get("valid_for"),
                "format": manifest.get("format", 1),
                "current": child.name == live,
            }
        )
    return sorted(versions, key=lambda v: (v["created_at"] or "", v["version"]))


def verify(version_dir: Path) -> list[str]:
    """Problems with a version directory's files against its manifest (empty when intact)."""
    try:
        manifest = read_manifest(version_dir)
    except (OSError, ValueError) as exc:
        return [f"manifest unreadable: {exc}"]
    problems = []
    listed = manifest.get("files", {})
    for rel, expected in sorted(listed.items()):
        path = version_dir / rel
        if not path.is_file():
            problems.append(f"{rel} missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel} sha256 mismatch (expected {expected[:12]}…)")
    for path in sorted(version_dir.rglob("*")):
        rel = path.relative_to(version_dir).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in listed:
            problems.append(f"{rel} not listed in manifest")
    return problems


def _write_pointer(root: Path, version: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".CURRENT.")
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_path(root)


def publish(
    model_dir: Path,
    name: str,
    version: str,
    write_files: Callable[[Path], None],
    manifest: dict[str, Any],
    keep: int | None = KEEP_VERSIONS,
) -> PublishResult:
    """Write a version atomically and make it current; keep the newest ``keep`` versions
    (None: every one, as a walk-forward registry does).

    ``write_files(directory)`` writes the artifacts; the manifest gets their sha256 added.
    Publishing a version that already exists only moves ``CURRENT`` (idempotent); one that
    exists with another ``valid_for`` is refused (a walk-forward run with other folds).
    """
    root = model_root(model_dir, name)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    created = False
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".staging-{version}-"))
        try:
            write_files(staging)
            files = {
                p.relative_to(staging).as_posix(): sha256_file(p)
                for p in sorted(staging.rglob("*"))
                if p.is_file()
            }
            full = {
                **manifest,
                "name": name,
                "version": version,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": files,
            }
            (staging / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
            for path in staging.rglob("*"):
                if path.is_file():
                    _fsync_path(path)
            _fsync_path(staging)
            os.rename(staging, final)
            _fsync_path(root)
            created = True
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    elif problems := verify(final):
        raise RegistryError(f"{name} {version} exists but is damaged: {'; '.join(problems)}")
    elif (held := read_manifest(final).get("valid_for")) != manifest.get("valid_for"):
        raise RegistryError(
            f"{name} {version} exists, valid for {held}, not {manifest.get('valid_for')}"
        )
    _write_pointer(root, version)
    if keep is not None:
        _prune(root, keep=keep)
    log.info("model_published", model=name, version=version, created=created)
    return PublishResult(name, version, final, created)


def _prune(root: Path, keep: int) -> None:
    """Drop old versions beyond ``keep`` (never the current one) and stale staging dirs."""
    live = (root / CURRENT).read_text().strip()
    for child in root.iterdir():
        if child.name.startswith(".staging-"):
            shutil.rmtree(child, ignore_errors=True)
    versions = [v["version"] for v in list_versions(root.parent, root.name)]
    for old in versions[: max(0, len(versions) - keep)]:
        if old != live:
            shutil.rmtree(root / old, ignore_errors=True)


def valid_version(versions: list[dict[str, Any]], session: str) -> str | None:
    """Of ``list_versions``' answer, the version valid for ``session`` (ISO date): its
    ``valid_for`` period holds the session and it was trained on data ending before it, so
    never on that session or a later one. None when no version is."""
    for v in versions:
        valid, window = v.get("valid_for") or {}, v.get("training_window") or {}
        end = window.get("end", "9999")
        if valid.get("after", "9999") < session <= valid.get("through", "") and end < session:
            return str(v["version"])
    return None


def rollback(model_dir: Path, name: str, to_version: str | None = None) -> str:
    """Point ``CURRENT`` at ``to_version`` (default: the version published before the live one)."""
    versions = [v["version"] for v in list_versions(model_dir, name)]
    live = current_version(model_dir, name)
    if to_version is None:
        if live not in versions or versions.index(live) == 0:
            raise RegistryError(f"{name}: no version before {live} to roll back to")
        to_version = versions[versions.index(live) - 1]
    if to_version not in versions:
        raise RegistryError(f"{name}: unknown version {to_version}")
    if problems := verify(model_root(model_dir, name) / to_version):
        raise RegistryError(f"{name} {to_version} is damaged: {'; '.join(problems)}")
    _write_pointer(model_root(model_dir, name), to_version)
    log.warning("model_rolled_back", model=name, version=to_version, previous=live)
    return to_version


def announce(bus: Any, result: PublishResult) -> None:
    """Tell the engines (stream aegis:models) that a version went live."""
    from shared.contract.schemas import ModelPublished

    bus.publish(ModelPublished(name=result.name, version=result.version, path=str(result.path)))
