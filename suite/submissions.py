"""Submitted gates: one folder each, a ``submission.yaml`` manifest and a Python module.

A submission is untrusted code. The parent process only reads its manifest and hashes its files;
importing the module, building the gate, checking it and running it all happen in confined worker
processes (``suite.executor``). What the parent needs to plan runs (is the gate causal, which
tasks does it support, which hyper-parameters does it take) comes back from an ``inspect`` job.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from suite.contract import RouterGate, TaskInfo
from suite.errors import RegistryError, SubmissionError
from suite.registry import GateEntry, _init_parameters, add_gate, apply_overrides, get_gate
from suite.spec import StrictModel, describe_validation_error, slug
from suite.yamlio import load_yaml

MANIFEST = "submission.yaml"
SUBMISSIONS_DIR = Path("submissions")


class SubmissionManifest(StrictModel):
    """What ``submission.yaml`` holds."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9+._-]*$",
        description="The gate's id on the leaderboard: lower-case letters, digits, + . _ -.",
    )
    authors: list[str] = Field(min_length=1)
    description: str = Field(min_length=1)
    paper: str = Field("", description="Citation of the paper the gate comes from, if any.")
    url: str = Field("", pattern=r"^(https?://\S+)?$", description="Paper or code URL (http/s).")
    entry_point: str = Field(
        pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$",
        description="module:Class, the module relative to the submission folder.",
    )
    kind: Literal["router"] = "router"
    families: list[str] = Field(min_length=1, description="Task families the gate targets.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    parameter_budget: int | None = Field(None, gt=0, description="Declared most parameters.")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_exists(cls, value: Any) -> Any:
        if value == "updater":
            raise ValueError(
                "kind 'updater' is not available yet: no updater task family exists; use 'router'"
            )
        return value

    @field_validator("families")
    @classmethod
    def _families_exist(cls, value: list[str]) -> list[str]:
        from suite.families import family_names

        unknown = [f for f in value if f not in family_names()]
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {', '.join(family_names())}")
        return value

    @property
    def module_name(self) -> str:
        return self.entry_point.split(":")[0]

    @property
    def class_name(self) -> str:
        return self.entry_point.split(":")[1]

    def module_path(self, folder: Path) -> Path:
        return folder / (self.module_name.replace(".", "/") + ".py")


def load_manifest(folder: Path) -> SubmissionManifest:
    """Read and validate a submission's manifest; errors name the file and the field."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: no such submission folder.")
    if not path.is_file():
        raise SubmissionError(
            f"{folder}: no {MANIFEST} here. Every submission folder needs one; "
            "`gatebench new-submission NAME` scaffolds a complete example."
        )
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise SubmissionError(f"{path}: the manifest is a YAML mapping of fields.")
    try:
        return SubmissionManifest.model_validate(raw)
    except ValidationError as exc:
        lines = [describe_validation_error(SubmissionManifest, e) for e in exc.errors()]
        raise SubmissionError(f"{path}: " + f"\n{path}: ".join(lines)) from None


def submission_files(folder: Path) -> list[Path]:
    """The files that define a submission: its manifest and its Python modules."""
    wanted = [p for p in folder.rglob("*") if p.suffix == ".py" or p.name == MANIFEST]
    return sorted(p for p in wanted if p.is_file() and "__pycache__" not in p.parts)


def submission_hash(folder: Path) -> str:
    """sha256 over the manifest and every Python file of the folder (no import needed)."""
    digest = hashlib.sha256()
    for path in submission_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def discover(root: Path = SUBMISSIONS_DIR) -> list[Path]:
    """Submission folders under ``root``: every sub-folder holding a manifest, sorted."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def manifest_name(folder: Path) -> str | None:
    """The gate name a folder's manifest declares, or None if the manifest does not load."""
    try:
        return load_manifest(folder).name
    except SubmissionError:
        return None


# -- in the worker process --------------------------------------------------------------------


def import_gate_class(folder: Path, manifest: SubmissionManifest) -> type[RouterGate]:
    """Import the entry point's module by path and return its gate class (worker side)."""
    manifest_path = folder / MANIFEST
    file = manifest.module_path(folder)
    if not file.is_file():
        raise SubmissionError(
            f"{manifest_path}: field 'entry_point': '{manifest.entry_point}' names module "
            f"'{manifest.module_name}', but {file} does not exist."
        )
    name = f"gatebench_submission_{slug(manifest.name).replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SubmissionError(f"{file}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # the submission's own helper modules
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SubmissionError(
            f"{exc.filename}, line {exc.lineno}: syntax error: {exc.msg}. "
            "Fix the module and submit again."
        ) from None
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise SubmissionError(
            f"{file}: importing the module raised {type(exc).__name__}: {exc}{where}."
        ) from None
    cls = getattr(module, manifest.class_name, None)
    if cls is None:
        classes = sorted(n for n, v in vars(module).items() if inspect.isclass(v))
        raise SubmissionError(
            f"{manifest_path}: field 'entry_point': module {file.name} has no class "
            f"'{manifest.class_name}' (classes there: {', '.join(classes) or 'none'})."
        )
    if not (inspect.isclass(cls) and issubclass(cls, RouterGate)):
        raise SubmissionError(
            f"{file}: {manifest.class_name} must be a subclass of suite.contract.RouterGate."
        )
    return cls


def register_submission(folder: Path) -> GateEntry:
    """Import a submission and register its gate in this (worker) process; idempotent."""
    manifest = load_manifest(folder)
    try:
        existing = get_gate(manifest.name)
    except RegistryError:
        existing = None
    if existing is not None and existing.module_file:
        return existing
    cls = import_gate_class(folder, manifest)
    unknown = set(manifest.hyperparameters) - _init_parameters(cls)
    if unknown:
        raise SubmissionError(
            f"{folder / MANIFEST}: field 'hyperparameters': {sorted(unknown)} are not parameters "
            f"of {cls.__name__}.__init__ (it takes {sorted(_init_parameters(cls)) or 'none'})."
        )
    entry = GateEntry(
        id=manifest.name,
        cls=cls,
        params=dict(manifest.hyperparameters),
        description=manifest.description,
        paper=manifest.paper,
        url=manifest.url,
        origin="submission",
        module_file=str(manifest.module_path(folder)),
        authors=tuple(manifest.authors),
    )
    add_gate(entry)
    return entry


def execute_inspect(payload: dict[str, Any]) -> dict[str, Any]:
    """Worker job: import the submission and report what planning needs."""
    entry = register_submission(Path(payload["submission_dir"]))
    support = {}
    for task_id, item in payload["tasks"].items():
        info = TaskInfo(**item["info"])
        try:
            ok, reason = entry.supports(info, item.get("overrides"))
        except Exception as exc:
            ok, reason = False, f"supports() raised {type(exc).__name__}: {exc}"
        support[task_id] = [bool(ok), str(reason)]
    return {
        "causal": entry.causal,
        "init_params": sorted(_init_parameters(entry.cls)),
        "support": support,
    }


# -- in the parent process ----------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionEntry:
    """The parent's view of a submitted gate, built without importing its code."""

    manifest: SubmissionManifest
    folder: Path
    causal: bool
    init_params: frozenset[str]
    support: Mapping[TaskInfo, tuple[bool, str]] = field(default_factory=dict)
    origin: str = "submission"
    kind: str = "router"
    equation: str = ""

    @property
    def id(self) -> str:
        return self.manifest.name

    @property
    def description(self) -> str:
        return self.manifest.description

    @property
    def paper(self) -> str:
        return self.manifest.paper or ", ".join(self.manifest.authors)

    @property
    def url(self) -> str:
        return self.manifest.url

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.manifest.hyperparameters)

    @property
    def authors(self) -> tuple[str, ...]:
        return tuple(self.manifest.authors)

    def resolved_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return apply_overrides(self.id, self.params, self.init_params, overrides)

    def supports(
        self, info: TaskInfo, overrides: Mapping[str, Any] | None = None
    ) -> tuple[bool, str]:
        return self.support.get(info, (False, "the submission was not inspected for this task"))

    def source_hash(self) -> str:
        return submission_hash(self.folder)

    def ref(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "submission_dir": str(self.folder.resolve()),
            "parameter_budget": self.manifest.parameter_budget,
        }
