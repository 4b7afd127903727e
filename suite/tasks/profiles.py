"""Profiles: the names a spec's settings are run under, and how a profile's override (or a scale
point's) is merged into a spec.

``smoke``, ``default`` and ``paper`` run for every spec; ``weights`` only where a spec defines it; a
scale axis's points run as profiles of their own, ``scale-<label>``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROFILES: tuple[str, ...] = ("smoke", "default", "paper", "weights")
ProfileName = Literal["smoke", "default", "paper", "weights"]
OPTIONAL_PROFILES: tuple[str, ...] = ("weights",)
"""Profiles that only the specs which define them run (``weights``: a pretrained model read from
disk, e.g. the paper's own); every spec runs the others."""
SCALE_PREFIX = "scale-"  # a scale axis's point runs as the profile "scale-<label>"


class ScalePoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(pattern=r"^[a-z0-9-]+$", description="Its profile is scale-<label>.")
    size: float = Field(gt=0, description="The point's place on the axis (e.g. the base's width).")
    override: dict[str, Any] = Field(
        default_factory=dict, description="Merged over the axis's profile, as a profile is."
    )


class ScaleAxis(BaseModel):
    """Points of growing model size, each a profile of its own (``scale-<label>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="What grows, e.g. 'base width (d_model)'.")
    profile: ProfileName = Field("default", description="The profile every point starts from.")
    seeds: int | None = Field(None, ge=2, description="Seeds per point (default: the profile's).")
    points: list[ScalePoint] = Field(min_length=3, description="Three or more sizes.")

    @model_validator(mode="after")
    def _distinct(self) -> ScaleAxis:
        if len({p.label for p in self.points}) < len(self.points):
            raise ValueError("scale.points: every label must be distinct")
        if len({p.size for p in self.points}) < len(self.points):
            raise ValueError("scale.points: every size must be distinct")
        return self


def merge_profile(raw: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """A raw spec with one profile's override merged in and ``profiles`` emptied: the one way
    profiles are applied, at load time and at run time."""
    override = (raw.get("profiles") or {}).get(profile) or {}
    merged = _deep_merge(dict(raw), override)
    merged["profiles"] = {}
    return merged


def merge_scale_point(raw: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """A raw spec as one scale point runs it: the axis's profile, then the point's override
    (and the axis's seeds)."""
    axis = raw["scale"]
    label = profile.removeprefix(SCALE_PREFIX)
    point = next(p for p in axis["points"] if p["label"] == label)
    merged = _deep_merge(merge_profile(raw, axis.get("profile") or "default"), point["override"])
    if axis.get("seeds"):
        merged["seeds"] = axis["seeds"]
    return merged


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
