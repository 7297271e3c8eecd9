"""The HTML viewer in a real headless Chromium (skipped when chromium, chromedriver or selenium is missing):
no console errors, hover on an operator, search that zooms to a readable size, blocks and clusters that
expand and fold, zoom buttons, arrow keys along edges, numbers that never wrap."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import graphdsl

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromedriver are not installed")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,760",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def rnn_page(tmp_path_factory):
    """The RNN's backward view: drawn with its cells as blocks, the expanded picture in the same page."""
    model = graphdsl.load(str(ROOT / "examples" / "rnn.gdsl"))
    values = json.loads((ROOT / "examples" / "rnn.json").read_text())
    r = model.render(values, view="backward")
    assert r.scene.call_nodes, "the test needs a picture with blocks"
    path = tmp_path_factory.mktemp("html") / "rnn.html"
    r.save(path)
    return path


def open_page(browser, path):
    browser.get(path.as_uri())
    browser.get_log("browser")  # start each test with an empty log
    browser.get(path.as_uri())


def severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def view_box(browser, pic="pic-main") -> list[float]:
    return [float(v) for v in browser.execute_script(
        f"return document.querySelector('#{pic} svg').getAttribute('viewBox')").split()]


def px_per_unit(browser, pic="pic-main") -> float:
    return browser.execute_script(
        f"var s = document.querySelector('#{pic} svg'), r = s.getBoundingClientRect(), v = s.viewBox.baseVal;"
        "return Math.min(r.width / v.width, r.height / v.height);")


def node(browser, title, pic="pic-main"):
    for g in browser.find_elements(By.CSS_SELECTOR, f"#{pic} g.node"):
        if g.find_element(By.TAG_NAME, "title").get_attribute("textContent") == title:
            return g
    raise AssertionError(f"no node {title}")


def info_text(browser) -> str:
    return browser.find_element(By.ID, "info").get_attribute("textContent")


def test_loads_without_console_errors(browser, rnn_page):
    open_page(browser, rnn_page)
    assert browser.find_element(By.CSS_SELECTOR, "#pic-main svg")
    assert not severe(browser)


def test_hover_on_an_operator_shows_its_inputs_and_local_derivative(browser, rnn_page):
    open_page(browser, rnn_page)
    ops = [g for g in browser.find_elements(By.CSS_SELECTOR, "#pic-main g.node")
           if g.find_element(By.TAG_NAME, "title").get_attribute("textContent").startswith("matmul#")]
    assert ops
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseenter'))", ops[0])
    text = info_text(browser)
    assert "operator" in text and "inputs" in text and "local derivative" in text and "dJ/da = g @ bᵀ" in text
    pre = browser.find_element(By.CSS_SELECTOR, "#info pre")
    assert pre.value_of_css_property("white-space") == "pre"  # numbers never wrap mid-number
    assert not severe(browser)


def test_search_zooms_until_the_hit_is_readable(browser, rnn_page):
    open_page(browser, rnn_page)
    box = browser.find_element(By.ID, "search")
    box.send_keys("dJ/dW_hh")
    assert "match" in browser.find_element(By.ID, "count").text
    box.send_keys(Keys.ENTER)
    assert px_per_unit(browser) >= 1.39  # 10-unit text at 14 px or more
    assert "dJ/dW_hh" in info_text(browser)
    hit = browser.find_element(By.CSS_SELECTOR, "#pic-main g.node.hit")
    rect = hit.rect
    view = browser.find_element(By.ID, "pic-main").rect
    assert view["x"] <= rect["x"] + rect["width"] / 2 <= view["x"] + view["width"]  # and in view
    assert not severe(browser)


def test_zoom_buttons(browser, rnn_page):
    open_page(browser, rnn_page)
    before = view_box(browser)[2]
    browser.find_element(By.ID, "zin").click()
    assert view_box(browser)[2] == pytest.approx(before / 1.3, rel=1e-3)
    browser.find_element(By.ID, "zout").click()
    browser.find_element(By.ID, "zout").click()
    assert view_box(browser)[2] == pytest.approx(before * 1.3, rel=1e-3)
    browser.find_element(By.ID, "fit").click()
    assert not severe(browser)


def test_blocks_expand_and_collapse_and_clusters_fold(browser, rnn_page):
    open_page(browser, rnn_page)
    main, expanded = browser.find_element(By.ID, "pic-main"), browser.find_element(By.ID, "pic-expanded")
    assert main.is_displayed() and not expanded.is_displayed()
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click'))", node(browser, "call:cell#3"))  # the loop is drawn at its last step
    assert expanded.is_displayed() and not main.is_displayed()
    assert px_per_unit(browser, "pic-expanded") >= 1.39  # zoomed to the block's cluster
    toggle = browser.find_element(By.ID, "blocks")
    assert toggle.text == "collapse blocks"
    # fold a cluster in place, then open it again
    title = browser.execute_script(
        "var c = document.querySelectorAll('#pic-expanded g.cluster'); return c.length")
    assert title >= 3
    label = browser.find_element(By.CSS_SELECTOR, "#pic-expanded g.cluster > text")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", label)
    folded = browser.find_elements(By.CSS_SELECTOR, "#pic-expanded g.node.folded")
    assert folded and not any(g.is_displayed() for g in folded)
    assert "folded" in label.get_attribute("textContent")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", label)
    assert not browser.find_elements(By.CSS_SELECTOR, "#pic-expanded g.node.folded")
    toggle.click()
    assert main.is_displayed() and not expanded.is_displayed()
    assert not severe(browser)


def test_arrow_keys_follow_edges(browser, rnn_page):
    open_page(browser, rnn_page)
    start = node(browser, "dJ/dh[3]")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click'))", start)
    assert "pinned" in start.get_attribute("class")
    edges = [e.get_attribute("textContent") for e in
             browser.find_elements(By.CSS_SELECTOR, "#pic-main g.edge > title")]

    def pinned():
        g = browser.find_element(By.CSS_SELECTOR, "#pic-main g.node.pinned")
        return g.find_element(By.TAG_NAME, "title").get_attribute("textContent")

    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()
    after = pinned()
    assert f"dJ/dh[3]->{after}" in edges  # one step along an edge out of dJ/dh[3]
    ActionChains(browser).send_keys(Keys.ARROW_UP).perform()
    assert f"{pinned()}->{after}" in edges  # and back up an edge into it
    assert not severe(browser)


@pytest.fixture(scope="module")
def loop_page(tmp_path_factory):
    """An RNN written with a loop: drawn rolled, the unrolled picture in the same page."""
    from render_models import loop_rnn

    r = graphdsl.parse(loop_rnn(4), "loop_rnn4.gdsl").render()
    assert r.scene.rolled, "the test needs a rolled loop"
    path = tmp_path_factory.mktemp("html") / "loop.html"
    r.save(path)
    return path


def test_a_rolled_loop_opens_unrolled_at_its_last_iteration(browser, loop_page):
    open_page(browser, loop_page)
    main, expanded = browser.find_element(By.ID, "pic-main"), browser.find_element(By.ID, "pic-expanded")
    title = browser.find_element(By.CSS_SELECTOR, "#pic-main g.cluster > text")
    assert "×4" in title.get_attribute("textContent")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", title)
    assert expanded.is_displayed() and not main.is_displayed()
    boxes = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#pic-expanded g.cluster > title'),"
        " function (t) { return t.textContent; })")
    assert [b for b in boxes if b.startswith("cluster_iter:")] == [f"cluster_iter:for t#1={t}" for t in range(1, 5)]
    assert px_per_unit(browser, "pic-expanded") >= 1.39  # zoomed to the last iteration's box
    browser.find_element(By.ID, "blocks").click()
    assert main.is_displayed() and not expanded.is_displayed()
    assert not severe(browser)
