"""The backward-pass player in a real headless browser (Debian's chromium); skipped without it.

Steps through every step of the one-neuron and D2L walkthroughs with the arrow
key, and checks at each step the highlighted node, the gradient tags (present
exactly for the gradients computed so far) and, at a few steps, the panel's
equation; then that the console has no errors and nothing was fetched.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import graphdsl
from graphdsl.values import load_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                reason="needs Debian's chromium and chromium-driver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="graphdsl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=1400,800"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def player(tmp_path, name, data=None, lr=0.5):
    model = graphdsl.load(EXAMPLES / f"{name}.gdsl")
    values = load_file(str(EXAMPLES / data), 2 ** 28) if data else None
    html = model.explain(values, lr=lr).html
    path = tmp_path / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    steps = json.loads(re.search(r'id="steps">(.*?)</script>', html, re.S).group(1))
    return path, steps


SHOWN = """
const cur = document.querySelector('g.node.current title');
const tags = [...document.querySelectorAll('text.tag.grad')].map(t => t.parentNode.querySelector('title').textContent);
const nodes = [...document.querySelectorAll('g.node title')].map(t => t.textContent);
return {step: document.body.dataset.step, current: document.body.dataset.current,
        highlighted: cur ? cur.textContent : null, grads: tags.sort(), nodes: nodes,
        panel: document.getElementById('equation').textContent,
        fetched: performance.getEntriesByType('resource').length};
"""


def walk_all(browser, path, steps):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(path.as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    seen = []
    for k in range(len(steps)):
        if k:
            body.send_keys(Keys.ARROW_RIGHT)
        state = browser.execute_script(SHOWN)
        assert state["step"] == str(k)
        node = steps[k]["node"]
        assert state["current"] == (node or "")
        if node in state["nodes"]:
            assert state["highlighted"] == node
        computed = sorted({n for s in steps[:k + 1] for n in s["grads"]} & set(state["nodes"]))
        assert state["grads"] == computed, f"step {k}: gradient tags {state['grads']}, computed {computed}"
        assert state["panel"] == steps[k]["text"]
        seen.append(state)
    body.send_keys(Keys.ARROW_RIGHT)  # past the end: stays on the last step
    assert browser.execute_script(SHOWN)["step"] == str(len(steps) - 1)
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert seen[-1]["fetched"] == 0
    assert seen[-1]["grads"], "no gradient drawn at the end"
    return seen


def test_one_neuron_step_by_step(browser, tmp_path):
    path, steps = player(tmp_path, "one_neuron")
    seen = walk_all(browser, path, steps)
    titles = [s["title"] for s in steps]
    k = titles.index("Forward: zh")
    assert seen[k]["highlighted"] == "zh" and seen[k]["panel"] == "zh = wh·x + bh = 0.2·0.5 + 0.1 = 0.2"
    k = titles.index("Backward: dE/dwo")
    assert seen[k]["highlighted"] == "wo" and seen[k]["panel"].endswith("= (-0.0507323717)·0.549833997 = -0.0278943827")
    assert "wh" not in seen[k]["grads"] and "wo" in seen[k]["grads"]  # dE/dwh is not computed yet
    k = titles.index("Update: wo")
    assert seen[k]["panel"] == "wo ← wo - η·dE/dwo = 0.3 - 0.5·(-0.0278943827) = 0.313947191"


def test_d2l_step_by_step_with_the_controls(browser, tmp_path):
    from selenium.webdriver.common.by import By

    path, steps = player(tmp_path, "d2l_mlp", "d2l_mlp.json", lr=0.1)
    seen = walk_all(browser, path, steps)
    titles = [s["title"] for s in steps]
    k = titles.index("Backward: dJ/dh")
    assert seen[k]["highlighted"] == "h" and "[q, m]ᵀ·[q, b] → [m, b]" in seen[k]["panel"]
    arrivals = [i for i, t in enumerate(titles) if t.startswith("Contribution")]
    assert arrivals and seen[arrivals[0]]["highlighted"] in ("W1", "W2")
    # the buttons and the slider drive the same state as the keys
    browser.find_element(By.ID, "prev").click()
    assert browser.execute_script(SHOWN)["step"] == str(len(steps) - 2)
    browser.execute_script("var s = document.getElementById('slider'); s.value = 3; "
                           "s.dispatchEvent(new Event('input'));")
    assert browser.execute_script(SHOWN)["step"] == "3"
    browser.find_element(By.ID, "next").click()
    assert browser.execute_script(SHOWN)["step"] == "4"
    browser.find_element(By.ID, "play").click()
    assert browser.find_element(By.ID, "play").text.startswith("❚❚")
    browser.find_element(By.ID, "play").click()
    assert browser.find_element(By.ID, "play").text.startswith("▶")


def test_unrolled_rnn_follows_the_steps(browser, tmp_path):
    """A graph too large to read whole: the view zooms to each step's nodes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path, steps = player(tmp_path, "rnn", "rnn.json", lr=0.2)
    browser.get(path.as_uri())
    assert browser.find_element(By.ID, "follow").is_selected()
    home = browser.execute_script("return document.querySelector('#view svg').getAttribute('viewBox')")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.END)
    k = next(i for i, s in enumerate(steps) if s["title"] == "Backward: dJ/dW_hh")
    browser.execute_script(f"var s = document.getElementById('slider'); s.value = {k}; "
                           "s.dispatchEvent(new Event('input'));")
    state = browser.execute_script(SHOWN)
    assert state["highlighted"] == "W_hh" and state["step"] == str(k)
    zoomed = browser.execute_script("return document.querySelector('#view svg').getAttribute('viewBox')")
    assert zoomed != home
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def test_notebook_display_runs_in_its_iframe(browser, tmp_path):
    """What Jupyter shows (_repr_html_): the player in a sandboxed iframe, working there."""
    from selenium.webdriver.common.by import By

    result = graphdsl.load(EXAMPLES / "one_neuron.gdsl").explain(lr=0.5)
    path = tmp_path / "notebook.html"
    path.write_text("<!DOCTYPE html><html><body><p>a notebook cell</p>" + result._repr_html_() + "</body></html>",
                    encoding="utf-8")
    browser.get(path.as_uri())
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        browser.find_element(By.ID, "next").click()
        browser.find_element(By.ID, "next").click()
        state = browser.execute_script(SHOWN)
        assert state["step"] == "2" and state["highlighted"] == "yh"
    finally:
        browser.switch_to.default_content()
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
