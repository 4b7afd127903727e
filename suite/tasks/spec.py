"""The spec base: what every task family's spec shares, validated by pydantic with unknown keys
rejected.

A spec file holds the paper-scale settings at its top level and partial overrides per profile
(``smoke``, ``default``, ``paper``; ``weights`` where a spec defines it).
``TaskSpec.for_profile`` merges an override and validates the result. Family-specific parts
(data, model, training) are declared by each family's subclass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from suite.errors import SpecError
from suite.identity import stable_hash
from suite.tasks.profiles import (
    OPTIONAL_PROFILES,
    PROFILES,
    SCALE_PREFIX,
    ProfileName,
    ScaleAxis,
    merge_profile,
    merge_scale_point,
)

TASK_ID_PATTERN = r"^[a-z0-9-]+(/[a-z0-9-]+)+$"
MetricKind = Literal["scalar", "curve", "curves", "matrix"]
ARRAY_DIMS: dict[str, int] = {"curve": 1, "curves": 2, "matrix": 2}


class StrictModel(BaseModel):
    """Unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricInfo(StrictModel):
    """How to read a metric: what it means, its shape, and which direction is better.

    Scalars are ranked, compared and judged against claims. Arrays (``curve``: one axis, one line
    per gate; ``curves``: two axes, one line per index of the second axis; ``matrix``: two axes,
    a heatmap) are averaged over seeds element-wise and drawn by their kind.
    """

    description: str
    higher_is_better: bool = True
    unit: str = ""
    ideal: float | None = Field(
        None, description="The best possible value: the normalised score's 1 without a ceiling."
    )
    kind: MetricKind = "scalar"
    axes: tuple[str, ...] = Field((), description="Axis names of an array, outermost first.")
    label: str = Field("", description="What the values are, for plot axes (default: the name).")
    deterministic: bool = Field(
        True, description="False for timings and memory: kept out of bit-identity checks."
    )
    chance: float | None = Field(
        None, description="What guessing scores (e.g. 1/56); drawn as a line on every plot."
    )

    @model_validator(mode="after")
    def _axes_match_kind(self) -> MetricInfo:
        want = ARRAY_DIMS.get(self.kind, 0)
        if len(self.axes) != want:
            raise ValueError(f"a {self.kind} metric has {want} axes, got {list(self.axes)}")
        return self

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalar"


class Source(StrictModel):
    paper: str = Field(description="Short citation of the paper whose task this is.")
    ref: str = Field("", description="Where in the paper: section, table, figure.")
    url: str = Field("", pattern=r"^(https?://\S+)?$")


class Limits(StrictModel):
    time_s: float = Field(900.0, gt=0, description="Wall-time limit of one run, in seconds.")
    memory_mb: int = Field(4096, gt=0, description="Address-space allowance of one run, in MiB.")
    max_params: int | None = Field(
        None, gt=0, description="Most trainable parameters a gate may have on this task."
    )


PRINTED_NUMBER = re.compile(r"^([+\-−]?)(\d+)(?:\.(\d+))?\s*(%|x|×)?$")


def parse_printed(text: str) -> tuple[float, int, float]:
    """A number as a paper prints it ("0.748", "80.1%", "124x", "+0.000") -> (value, decimals,
    scale): the value as a fraction or plain number, the decimals printed and the unit of those
    decimals (0.01 for a percentage)."""
    match = PRINTED_NUMBER.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a printed number: write it as the paper does, e.g. '0.748', "
            "'80.1%', '124x'"
        )
    sign, whole, frac, unit = match.groups()
    value = float(f"{whole}.{frac or '0'}") * (-1.0 if sign in ("-", "−") else 1.0)
    scale = 0.01 if unit == "%" else 1.0
    return value * scale, len(frac or ""), scale


ToleranceBasis = Literal["paper-spread", "printed-resolution", "practical"]
Relation = Literal["same", "reduced-scale", "transfer"]


class Claim(StrictModel):
    """A published number to reproduce: one gate's metric, a quantity derived from it per seed
    (a paired difference, a ratio, a share of a gap, a coverage K), or an interaction of ablation
    factors.

    ``mean`` is the paper's number as printed (a string such as "0.748", "80.1%", "124x"), so
    that its resolution comes from the paper's text; a bare float has no known resolution unless
    ``decimals`` says how many the paper printed."""

    metric: str
    gate: str | None = None
    versus: str | None = Field(
        None,
        description="Judge gate minus this gate, paired per seed (e.g. 'better than': mean 0, "
        "bound at-least; or a paired gain with the paper's spread), instead of the gate's value.",
    )
    ratio_to: str | None = Field(
        None, description="Judge gate / this gate on the metric, per seed (e.g. '124x')."
    )
    gap: tuple[str, str] | None = Field(
        None,
        description="(reference, ceiling): judge (gate - reference) / (ceiling - reference) per "
        "seed, the share of the gap closed (e.g. '75% of the oracle gap').",
    )
    coverage_of: str | None = Field(
        None,
        description="A probability metric: judge K = log(0.01) / log(1 - p) per seed, unrounded "
        "(the papers average K over seeds), on the claim's metric name.",
    )
    interaction: tuple[str, str] | None = None
    mean: float
    printed: str | None = Field(None, description="The number as the paper prints it.")
    decimals: int | None = Field(None, ge=0, description="Decimals printed, for a bare float.")
    sd: float | None = Field(None, ge=0)
    n: int | None = Field(None, gt=0)
    source: str = Field(description="Table or section the number comes from.")
    note: str = ""
    bound: Literal["equal", "at-most", "at-least"] = Field(
        "equal", description="'at-most' for claims such as 'complete by step 600'."
    )
    tolerance: float | None = Field(
        None,
        ge=0,
        description="Equivalence margin: the absolute difference still called the same (for a "
        "bound, how far on the wrong side still counts). Default: 5% of the claim, 'practical'.",
    )
    tolerance_basis: ToleranceBasis | None = Field(
        None,
        description="Why this margin: the paper's spread, its printed resolution or a "
        "stated practical margin (say which in tolerance_note).",
    )
    tolerance_note: str = ""
    not_comparable: str = Field(
        "",
        description="Why our measurement cannot be compared with this number (another device, "
        "model or quantity): the claim is listed with this reason and never judged.",
    )
    setting: str = Field(
        "", description="The paper's setting of this number where it differs from the task's."
    )
    relation: Relation | None = Field(
        None,
        description="How our paper profile relates to this claim's setting (default: the "
        "task's relation).",
    )
    general: bool = Field(
        False,
        description="The paper states the claim in general, not only for its own setting: a "
        "difference at a reduced scale may then contradict it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _printed_mean(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("mean"), str):
            data = dict(data)
            text = data["mean"]
            value, _, _ = parse_printed(text)
            data["mean"], data["printed"] = value, text.strip()
        return data

    @model_validator(mode="after")
    def _one_subject(self) -> Claim:
        if (self.gate is None) == (self.interaction is None):
            raise ValueError("a claim names exactly one of 'gate' or 'interaction'")
        derived = [f for f in ("versus", "ratio_to", "gap", "coverage_of") if getattr(self, f)]
        if derived and self.gate is None:
            raise ValueError(f"'{derived[0]}' derives from a gate: name the claim's 'gate' too")
        if len(derived) > 1:
            raise ValueError(f"a claim derives one quantity; got {', '.join(derived)}")
        if self.printed is not None and self.decimals is not None:
            raise ValueError("'decimals' is for a bare number; a printed string carries its own")
        return self

    @property
    def resolution(self) -> float:
        """Half a unit of the last printed decimal: the paper's "0.748" means [0.7475, 0.7485);
        0 where the printed form is unknown (a bare float without ``decimals``)."""
        if self.printed is not None:
            _, decimals, scale = parse_printed(self.printed)
            return 0.5 * scale * 10.0**-decimals
        if self.decimals is not None:
            return 0.5 * 10.0**-self.decimals
        return 0.0

    @property
    def shown(self) -> str:
        """The claimed number as the paper printed it."""
        return self.printed if self.printed is not None else f"{self.mean:g}"

    @property
    def subject(self) -> str:
        if self.gate and self.versus:
            return f"{self.gate} − {self.versus}"
        if self.gate and self.ratio_to:
            return f"{self.gate} ÷ {self.ratio_to}"
        if self.gate and self.gap:
            return f"{self.gate}: share of the {self.gap[0]}→{self.gap[1]} gap"
        if self.gate and self.coverage_of:
            return f"{self.gate}: K(99%) from {self.coverage_of}"
        return self.gate if self.gate else "×".join(self.interaction or ())


class Ablation(StrictModel):
    """A full factorial design over gate mechanisms; the cell of factors {a, b} is gate 'a+b'."""

    factors: list[str] = Field(min_length=2)
    metric: str
    baseline: str = Field(description="Gate id of the cell with no factor switched on.")

    def cell_gate(self, active: Iterable[str]) -> str:
        chosen = [f for f in self.factors if f in set(active)]
        return "+".join(chosen) if chosen else self.baseline

    def cell_factors(self, gate_id: str) -> list[bool]:
        """Which factors are on in the cell named ``gate_id`` (the inverse of ``cell_gate``)."""
        active = set() if gate_id == self.baseline else set(gate_id.split("+"))
        return [f in active for f in self.factors]


class TaskSpec(StrictModel):
    """Fields shared by every task family."""

    family_metrics: ClassVar[dict[str, MetricInfo]] = {}

    id: str = Field(pattern=TASK_ID_PATTERN)
    family: str
    version: int = Field(gt=0, description="Bump on any change that alters results.")
    title: str
    description: str
    source: Source
    variant_of: str | None = None
    reference_gate: str | None = Field(
        None, description="Gate that deltas are paired against and that scores 0 when normalised."
    )
    ceiling_gate: str | None = None
    primary_metric: str
    metrics: list[str] = Field(min_length=1)
    seeds: int = Field(5, gt=0, le=100)
    master_seed: int = Field(0, ge=0)
    gate_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    limits: Limits = Limits()
    ablation: Ablation | None = None
    claims: list[Claim] = Field(default_factory=list)
    paper_setting: str = Field(
        "",
        description="The setting of the paper's numbers: model and size, data, seeds, what was "
        "measured.",
    )
    relation: Relation = Field(
        "same",
        description="How the paper profile relates to the paper's setting: the same setting, a "
        "reduced scale of it, or a transfer of the method to another setting.",
    )
    relation_note: str = Field("", description="What is reduced, or what the transfer changes.")
    deviations: list[str] = Field(
        default_factory=list,
        description="Deliberate departures of the paper profile from the paper's own settings, "
        "each with its reason (shown beside the claims).",
    )
    profiles: dict[ProfileName, dict[str, Any]] = Field(default_factory=dict)
    scale: ScaleAxis | None = Field(
        None,
        description="A model-size axis run under its own profiles (not in run-all), to see "
        "whether a reduced-scale result moves towards the paper's number as the model grows.",
    )

    def available_metrics(self) -> dict[str, MetricInfo]:
        """Metrics this task can compute; families narrow it by the data settings."""
        return dict(self.family_metrics)

    @model_validator(mode="after")
    def _metrics_known(self) -> TaskSpec:
        available = self.available_metrics()
        for name in self.metrics:
            if name not in available:
                raise ValueError(
                    f"metric '{name}' is not available for this task; "
                    f"available: {', '.join(sorted(available))}"
                )
        used = {"primary_metric": self.primary_metric}
        if self.ablation:
            used["ablation.metric"] = self.ablation.metric
        for i, claim in enumerate(self.claims):
            if claim.not_comparable:
                continue  # a number of another setting: its quantity need not be ours
            used[f"claims.{i}.metric"] = claim.metric
            if claim.coverage_of:
                used[f"claims.{i}.coverage_of"] = claim.coverage_of
        for where, name in used.items():
            if name not in self.metrics:
                raise ValueError(f"{where} '{name}' must be one of metrics {self.metrics}")
            if not available[name].is_scalar:
                raise ValueError(f"{where} '{name}' must be a scalar metric, not an array")
        return self

    # -- profiles and identity --------------------------------------------------------------

    def has_profile(self, profile: str) -> bool:
        """Whether this spec runs ``profile`` (an optional profile only where it defines it; a
        scale point only where its axis has it)."""
        if profile == "scale" or profile.startswith(SCALE_PREFIX):
            return self.scale is not None and profile in ("scale", *self.scale_profiles())
        return profile in PROFILES and (
            profile not in OPTIONAL_PROFILES or profile in self.profiles
        )

    def scale_profiles(self) -> list[str]:
        """The profiles of this spec's scale points, smallest first."""
        points = sorted(self.scale.points, key=lambda p: p.size) if self.scale else []
        return [SCALE_PREFIX + p.label for p in points]

    def for_profile(self, profile: str) -> TaskSpec:
        """The spec as a given profile runs it (override merged, ``profiles`` dropped)."""
        raw = self.model_dump(mode="json")
        if profile.startswith(SCALE_PREFIX) and self.has_profile(profile):
            return type(self).model_validate(merge_scale_point(raw, profile))
        if profile not in PROFILES:
            known = [*PROFILES, *self.scale_profiles()]
            raise SpecError(f"Unknown profile '{profile}'. Profiles are: {', '.join(known)}.")
        return type(self).model_validate(merge_profile(raw, profile))

    def metric_info(self) -> dict[str, MetricInfo]:
        """The scalars the spec lists, then every array the task computes."""
        available = self.available_metrics()
        listed = {m: available[m] for m in self.metrics}
        arrays = {m: i for m, i in available.items() if not i.is_scalar and m not in listed}
        return {**listed, **arrays}

    def identity(self) -> dict[str, Any]:
        """The fields that change results; their hash is part of every run's key. Gate
        hyper-parameters are not here: each run's key holds its own gate's."""
        keep = ("id", "family", "version", "master_seed", "metrics")
        raw = self.model_dump(mode="json")
        return {k: raw[k] for k in (*keep, *self.family_identity_fields())}

    def family_identity_fields(self) -> tuple[str, ...]:
        """Top-level fields of the family's spec that change results (data, model, training)."""
        return ()

    def spec_hash(self) -> str:
        return stable_hash(self.identity())
