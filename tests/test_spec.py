"""Spec loading: shipped specs validate; malformed ones fail naming the file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from suite.errors import SpecError
from suite.tasks.families.transition import TransitionFamily
from suite.tasks.loading import load_all_tasks, load_task_file, select_tasks
from suite.tasks.lock import lock_problems, update_lock
from suite.tasks.spec import PROFILES

ANTICIPATION = TransitionFamily.specs_dir() / "anticipation.yaml"


def _write(tmp_path: Path, data: dict | str, name: str = "transition/broken.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _base() -> dict:
    data = yaml.safe_load(ANTICIPATION.read_text())
    data["id"] = "transition/broken"
    return data


def test_every_shipped_spec_validates_in_every_profile():
    tasks = load_all_tasks()
    assert {t.id for t in tasks} >= {
        "transition/early-signal",
        "transition/domain-switch",
        "transition/precision-static",
        "transition/precision-shift",
        "transition/anticipation",
    }
    for task in tasks:
        for profile in PROFILES:
            resolved = task.for_profile(profile)
            assert resolved.profiles == {}
            assert resolved.primary_metric in resolved.metrics


def test_paper_profile_keeps_the_papers_settings(tasks):
    paper = tasks["transition/anticipation"].for_profile("paper")
    assert (paper.data.seq_len, paper.data.switch_at, paper.data.noise_std) == (12, 6, 0.8)
    assert (paper.train.epochs, paper.train.batch_size, paper.train.lr) == (800, 512, 0.003)
    assert paper.seeds == 5


def test_profiles_change_the_spec_hash_and_smoke_is_small(tasks):
    task = tasks["transition/anticipation"]
    smoke, paper = task.for_profile("smoke"), task.for_profile("paper")
    assert smoke.spec_hash() != paper.spec_hash()
    assert smoke.train.epochs < 100


def test_description_does_not_change_the_hash_but_data_does(tasks):
    task = tasks["transition/anticipation"]
    reworded = task.model_copy(update={"description": "other words"})
    assert reworded.spec_hash() == task.spec_hash()
    noisier = task.model_copy(update={"data": task.data.model_copy(update={"noise_std": 0.9})})
    assert noisier.spec_hash() != task.spec_hash()


def test_unknown_key_names_file_field_and_allowed_fields(tmp_path):
    data = _base()
    data["train"]["epoch"] = 10
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as err:
        load_task_file(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "train.epoch" in msg and "unknown field" in msg
    assert "epochs" in msg  # the allowed fields are listed


def test_unknown_key_inside_discriminated_data(tmp_path):
    data = _base()
    data["data"]["noise"] = 0.8
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "data.routing-stream.noise" in str(err.value)
    assert "noise_std" in str(err.value)


def test_bad_value_names_field_and_value(tmp_path):
    data = _base()
    data["train"]["lr"] = -1
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "train.lr" in str(err.value) and "greater than 0" in str(err.value)
    assert "-1" in str(err.value)


def test_cross_field_rule_is_explained(tmp_path):
    data = _base()
    data["data"]["domain_experts"] = [0, 9]
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "domain_experts [9] are not experts 0..3" in str(err.value)


def test_unknown_metric_lists_the_available_ones(tmp_path):
    data = _base()
    data["metrics"] = ["acc_all", "accuracy"]
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "metric 'accuracy' is not available" in str(err.value)
    assert "acc_transition" in str(err.value)


def test_bad_profile_override_names_the_profile(tmp_path):
    data = _base()
    data["profiles"]["smoke"]["train"]["eval_window"] = 1000
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "profile 'smoke'" in str(err.value)
    assert "eval_window (1000) cannot exceed epochs (40)" in str(err.value)


def test_unknown_profile_name_is_rejected(tmp_path):
    data = _base()
    data["profiles"]["huge"] = {"seeds": 1}
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "profiles.huge" in str(err.value)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    text = ANTICIPATION.read_text().replace("seeds: 5\n", "seeds: 5\nseeds: 3\n", 1)
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_task_file(path)
    assert "key 'seeds' appears twice" in str(err.value) and str(path) in str(err.value)


def test_invalid_yaml_is_reported_with_position(tmp_path):
    path = _write(tmp_path, "id: [unclosed\n")
    with pytest.raises(SpecError) as err:
        load_task_file(path)
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_unknown_family(tmp_path):
    data = _base()
    data["family"] = "nope"
    with pytest.raises(SpecError) as err:
        load_task_file(_write(tmp_path, data))
    assert "unknown family 'nope'" in str(err.value) and "transition" in str(err.value)


def test_id_must_match_file_location(tmp_path):
    data = _base()
    path = _write(tmp_path, data, name="transition/elsewhere.yaml")
    with pytest.raises(SpecError) as err:
        load_task_file(path, specs_dir=tmp_path)
    assert "must match the file's place" in str(err.value)


def test_select_tasks_by_prefix_family_and_typo(tasks):
    all_tasks = list(tasks.values())
    transition = [t for t in all_tasks if t.family == "transition"]
    assert select_tasks(all_tasks, ["transition/"]) == transition
    assert [t.id for t in select_tasks(all_tasks, ["transition/anticipation"])] == [
        "transition/anticipation"
    ]
    with pytest.raises(SpecError, match="Did you mean transition/anticipation"):
        select_tasks(all_tasks, ["transition/anticipatoin"])
    with pytest.raises(SpecError, match="No tasks in family"):
        select_tasks(all_tasks, family="vision")


def test_spec_contents_match_their_locked_versions():
    problems = lock_problems(load_all_tasks())
    assert not problems, (
        "\n".join(problems) + "\nAfter bumping versions run: python -m suite.tasks.lock --update"
    )


def test_the_lock_catches_an_edit_without_a_version_bump(tasks, tmp_path):
    lock = tmp_path / "lock.json"
    task = tasks["transition/anticipation"]
    update_lock([task], lock)
    assert lock_problems([task], lock) == []
    edited = task.model_copy(update={"train": task.train.model_copy(update={"lr": 0.01})})
    assert "bump 'version'" in lock_problems([edited], lock)[0]
    bumped = edited.model_copy(update={"version": 2})
    assert "not recorded yet" in lock_problems([bumped], lock)[0]


def test_every_gate_a_spec_names_is_registered(tasks):
    """Reference and ceiling gates and every claim's gates exist: a typo in a spec would otherwise
    leave a task without its reference, or a claim forever 'missing'."""
    from suite.gates.entries import all_gates

    registered = {g.id for g in all_gates()}
    for task in tasks.values():
        named = {task.reference_gate, task.ceiling_gate}
        for claim in task.claims:
            named |= {claim.gate, claim.versus}
        unknown = sorted(n for n in named if n is not None and n not in registered)
        assert not unknown, f"{task.id} names gates that are not registered: {unknown}"


def test_one_task_is_loaded_by_its_exact_id_and_a_group_or_unknown_id_is_an_error():
    from suite.tasks.loading import load_task

    spec = load_task("transition/anticipation", "smoke")
    assert spec.id == "transition/anticipation" and spec.train.epochs == 40
    with pytest.raises(SpecError, match="group of tasks"):
        load_task("transition/")
    with pytest.raises(SpecError, match="Unknown task"):
        load_task("transition/anticipaton")
