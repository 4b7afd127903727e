"""Submitted gates: one folder each, a ``submission.yaml`` manifest and a Python module.

A submission is untrusted code. The parent process only reads its manifest and hashes its files;
importing the module, building the gate, checking it and running it all happen in confined worker
processes (``suite.runs.executors``). What the parent needs to plan runs (is the gate causal, which
tasks does it support, which hyper-parameters does it take) comes back from an ``inspect`` job.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from suite.contract import Gate, TaskInfo
from suite.errors import SubmissionError
from suite.gates.entries import GateEntry, add_gate, apply_overrides, gates, init_parameters
from suite.gates.kinds import kinds
from suite.identity import files_hash, slug
from suite.tasks.family import families
from suite.tasks.loading import describe_validation_error
from suite.tasks.spec import StrictModel
from suite.tasks.yamlio import load_yaml

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
    kind: str = Field("router", description="The gate kind: router, or another registered kind.")
    families: list[str] = Field(min_length=1, description="Task families the gate targets.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    parameter_budget: int | None = Field(None, gt=0, description="Declared most parameters.")

    @field_validator("kind")
    @classmethod
    def _kind_runs_somewhere(cls, value: str) -> str:
        runs = {f.gate_kind for f in families.values()}
        if value not in kinds or value not in runs:
            raise ValueError(
                f"no task family runs gates of kind '{value}'; kinds with a family: "
                f"{', '.join(sorted(runs))}"
            )
        return value

    @field_validator("families")
    @classmethod
    def _families_exist(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in families]
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {', '.join(families.names())}")
        return value

    @model_validator(mode="after")
    def _families_run_the_kind(self) -> SubmissionManifest:
        wrong = [f for f in self.families if families.get(f).gate_kind != self.kind]
        if wrong:
            raise ValueError(
                f"families {wrong} do not run gates of kind '{self.kind}'; list only families "
                f"whose gate kind is '{self.kind}'"
            )
        return self

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
    return files_hash(submission_files(folder), folder)


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


def import_gate_class(folder: Path, manifest: SubmissionManifest) -> type[Gate]:
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
    base = kinds.get(manifest.kind).base
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise SubmissionError(
            f"{file}: {manifest.class_name} must be a subclass of suite.contract.{base.__name__} "
            f"(the manifest declares kind '{manifest.kind}')."
        )
    return cls


def register_submission(folder: Path) -> GateEntry:
    """Import a submission and register its gate in this (worker) process; idempotent."""
    manifest = load_manifest(folder)
    existing = gates.get(manifest.name) if manifest.name in gates else None
    if existing is not None and existing.module_file:
        return existing
    cls = import_gate_class(folder, manifest)
    unknown = set(manifest.hyperparameters) - init_parameters(cls)
    if unknown:
        raise SubmissionError(
            f"{folder / MANIFEST}: field 'hyperparameters': {sorted(unknown)} are not parameters "
            f"of {cls.__name__}.__init__ (it takes {sorted(init_parameters(cls)) or 'none'})."
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
        info = TaskInfo.from_dict(item["info"])
        try:
            ok, reason = entry.supports(info, item.get("overrides"))
        except Exception as exc:
            ok, reason = False, f"supports() raised {type(exc).__name__}: {exc}"
        support[task_id] = [bool(ok), str(reason)]
    return {
        "causal": entry.causal,
        "init_params": sorted(init_parameters(entry.cls)),
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
    equation: str = ""
    ceiling: bool = False  # only GateBench's own baselines may know a task's generator

    @property
    def kind(self) -> str:
        return self.manifest.kind

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
