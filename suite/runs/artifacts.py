"""Prepared artefacts: what a family builds once per (spec, seed) before any gate runs, such as a
pre-trained frozen base model.

A family's ``prepare`` is trusted code; its output (a dict of tensors) comes back to the parent
process, which alone writes it, atomically, under ``results/artifacts/``. The file is found by its
*recipe* (the family, its source, the task's identity and the seed) and named in every run by its
*content* hash, which enters the run key: a rebuilt artefact with other bytes misses the cache.
Runs load it read-only and check its hash before use.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

import suite
from suite.errors import RunError
from suite.identity import slug, stable_hash
from suite.runs.records import write_json_atomic
from suite.tasks.family import Artifact, TaskFamily
from suite.tasks.spec import TaskSpec


def content_hash(artifact: Artifact) -> str:
    """sha256 over names, dtypes, shapes and bytes, in name order (not over pickle bytes)."""
    digest = hashlib.sha256()
    for name in sorted(artifact):
        t = artifact[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def to_bytes(artifact: Artifact) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in artifact.items()}, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class ArtifactSlot:
    """Where one (task, seed)'s artefact lives in a results folder."""

    task_id: str
    seed_index: int
    recipe: str
    path: Path  # the tensors
    sidecar: Path  # their content hash and recipe

    def __str__(self) -> str:
        return f"{self.task_id} seed {self.seed_index}"

    def content_hash(self) -> str | None:
        """The recorded content hash, or None when the artefact is missing or incomplete."""
        if not (self.path.is_file() and self.sidecar.is_file()):
            return None
        try:
            return str(json.loads(self.sidecar.read_text())["content_hash"])
        except (OSError, ValueError, KeyError):
            return None

    def write(self, blob: bytes) -> str:
        """Store a prepared artefact (parent process only); returns its content hash."""
        artifact = torch.load(io.BytesIO(blob), weights_only=True)
        digest = content_hash(artifact)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        write_json_atomic(
            self.sidecar,
            {"content_hash": digest, "recipe": self.recipe, "task": self.task_id,
             "seed_index": self.seed_index, "bytes": len(blob)},
        )  # fmt: skip
        return digest


def slot(
    results: Path, family: TaskFamily, spec: TaskSpec, seed_index: int, salt: str = ""
) -> ArtifactSlot:
    recipe = stable_hash(
        {
            "suite": suite.__version__,
            "salt": salt,
            "family": family.name,
            "family_source": family.source_hash(),
            "task": spec.identity(),
            "seed_index": seed_index,
        }
    )
    folder = results / "artifacts" / slug(spec.id)
    stem = f"seed{seed_index}-{recipe}"
    return ArtifactSlot(spec.id, seed_index, recipe, folder / f"{stem}.pt", folder / f"{stem}.json")


def load_artifact(path: str | Path, expected_hash: str) -> Artifact:
    """Load an artefact read-only (tensors only) and check it is the one the run key names."""
    artifact = torch.load(Path(path), weights_only=True, map_location="cpu")
    found = content_hash(artifact)
    if found != expected_hash:
        raise RunError(
            f"The prepared artefact {path} has content hash {found}, but the run expects "
            f"{expected_hash}; it changed after planning. Run again (it will be rebuilt)."
        )
    for tensor in artifact.values():
        tensor.requires_grad_(False)
    return artifact
