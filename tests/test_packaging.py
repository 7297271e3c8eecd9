"""The wheel ships every subpackage and the grammar (pyproject lists packages by hand)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "graphdsl").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["tool"]["setuptools"]["package-dir"]["graphdsl.grammars"] == "grammars"


def test_the_installed_distribution_ships_the_grammar_and_the_parser_tables():
    """Read from the installed distribution's file list, whichever copy of graphdsl this process
    imported (a source checkout on sys.path has no graphdsl.grammars package: pyproject maps it)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("graphdsl")
    except metadata.PackageNotFoundError:
        pytest.skip("graphdsl is not installed as a distribution")
    shipped = {str(f).replace("\\", "/") for f in dist.files or ()}
    if not any(f.endswith(".dist-info/RECORD") for f in shipped):
        pytest.skip("an editable or legacy install: no file list to read")
    for wanted in ("graphdsl/grammars/graphdsl.lark", "graphdsl/_parser_tables.py", "graphdsl/py.typed"):
        assert wanted in shipped, f"{wanted} is not in the installed distribution"
    grammar = dist.locate_file("graphdsl/grammars/graphdsl.lark")
    assert Path(grammar).read_text(encoding="utf-8") == (ROOT / "grammars" / "graphdsl.lark").read_text(encoding="utf-8")
