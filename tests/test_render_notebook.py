"""Renderings in a notebook, executed for real with nbclient: two models in one notebook, each an
interactive viewer (text/html) plus an SVG, no PNG, the viewer self-contained and isolated."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]

CELLS = [
    "import os, sys\nsys.path.insert(0, {root!r})\nimport graphdsl, json",
    "m = graphdsl.load({root!r} + '/examples/d2l_mlp.gdsl')\n"
    "m.render(json.load(open({root!r} + '/examples/d2l_mlp.json')), view='backward')",
    "r = graphdsl.load({root!r} + '/examples/rnn.gdsl').render(json.load(open({root!r} + '/examples/rnn.json')))\n"
    "r",
]


def kernel_name() -> str:
    """The native kernel: ipykernel for this interpreter (no `ipykernel install` needed)."""
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    return NATIVE_KERNEL_NAME


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.format(root=str(ROOT))) for c in CELLS]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name=kernel_name(),
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}})
    client.execute()
    return [cell.outputs for cell in nb.cells]


def test_two_renders_in_one_notebook_each_give_html_and_svg(outputs):
    shown = [o for cell in outputs[1:] for o in cell if o["output_type"] == "execute_result"]
    assert len(shown) == 2
    for out in shown:
        assert set(out["data"]) == {"text/plain", "text/html", "image/svg+xml"}  # no PNG unless asked
        assert out["data"]["image/svg+xml"].lstrip().startswith("<?xml")
    ids = [re.match(r'<iframe id="(graphdsl-[0-9a-f]+)"', o["data"]["text/html"]).group(1) for o in shown]
    assert len(set(ids)) == 2  # each viewer its own element


def test_the_viewer_is_self_contained_and_sized_to_the_cell(outputs):
    for cell in outputs[1:]:
        frame = next(o for o in cell if o["output_type"] == "execute_result")["data"]["text/html"]
        assert 'sandbox="allow-scripts"' in frame and "width: 100%" in frame
        height = int(re.search(r"height: (\d+)px", frame).group(1))
        assert 320 <= height <= 760
        page = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page and 'id="graph-data"' in page
        assert "default-src 'none'" in page  # no network, by the page's own policy
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)


def test_no_errors_in_the_notebook(outputs):
    for cell in outputs:
        assert not [o for o in cell if o["output_type"] == "error"]
