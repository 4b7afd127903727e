"""The one registry type: names checked, duplicates named, did-you-mean, discovery by folders."""

from __future__ import annotations

import sys

import pytest

from suite.errors import RegistryError
from suite.registry import Registry, discover


def test_duplicates_bad_names_and_unknown_names_are_clear_errors():
    reg: Registry[int] = Registry("widget", hint="`widgets list` shows them.")
    reg.add("alpha", 1, origin="module a")
    with pytest.raises(RegistryError, match=r"'alpha' is registered twice \(first by module a\)"):
        reg.add("alpha", 2)
    with pytest.raises(RegistryError, match="not allowed"):
        reg.add("Bad Name", 3)
    with pytest.raises(RegistryError, match=r"Did you mean 'alpha'\?.*widgets list"):
        reg.get("alpah")
    assert reg.names() == ["alpha"] and "alpha" in reg and reg.get("alpha") == 1
    reg.remove("alpha")
    assert "alpha" not in reg


def test_the_loader_runs_once_before_the_first_lookup():
    calls = []
    reg: Registry[str] = Registry("thing", loader=lambda: calls.append(1) or reg.add("x", "y"))
    assert calls == []
    assert reg.get("x") == "y" and reg.names() == ["x"]
    assert calls == [1]


def test_discovery_imports_public_modules_and_sub_packages(tmp_path, monkeypatch):
    root = tmp_path / "plugins_demo"
    (root / "family").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "one.py").write_text("LOADED = True\n")
    (root / "_private.py").write_text("raise RuntimeError('private modules are skipped')\n")
    (root / "family" / "__init__.py").write_text("")
    (root / "family" / "two.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert discover("plugins_demo") == ["plugins_demo.family", "plugins_demo.one"]
        assert "plugins_demo.family.two" not in sys.modules
        assert "plugins_demo.family.two" in discover("plugins_demo", recursive=True)
        assert sys.modules["plugins_demo.family.two"].LOADED
    finally:
        for name in [m for m in sys.modules if m.startswith("plugins_demo")]:
            del sys.modules[name]
