"""The playground's page in a real headless Chromium, driven through Playwright.

Skipped when Playwright or Chromium is missing (Debian: ``apt-get install chromium``;
Playwright's own browser download is not used). CI sets CHAINRULE_REQUIRE_BROWSER=1, so
there a missing browser fails the run instead of skipping. CHAINRULE_CHROMIUM names
another Chromium binary.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from chainrule.nn import Dense, Network
from chainrule.playground.server import PlaygroundServer

API = "window.chainrulePlayground"


def _missing(why: str) -> None:
    if os.environ.get("CHAINRULE_REQUIRE_BROWSER"):
        pytest.fail(why)
    pytest.skip(why)


def chromium_path() -> str | None:
    for p in (os.environ.get("CHAINRULE_CHROMIUM"), shutil.which("chromium"),
              shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if p and os.path.exists(p):
            return p
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    exe = chromium_path()
    if exe is None:
        _missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def app():
    a = PlaygroundServer().start()
    yield a
    a.stop()


def open_page(browser, app, fragment=""):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and "favicon" not in m.text
            and errors.append(m.text))
    page.goto(app.url + fragment)
    page.evaluate(f"{API}.ready")
    page.errors = errors
    return page


def state(page):
    return page.evaluate(f"{API}.state()")


def test_xor_trains_through_the_controls_and_a_neuron_shows_backprop_numbers(browser, app):
    page = open_page(browser, app)
    assert "token" not in page.url            # swapped for the cookie
    page.get_by_role("button", name="XOR").click()
    page.get_by_label("Learning rate").select_option("0.3")
    page.wait_for_function(f"() => {API}.state().config.dataset === 'xor' && "
                           f"{API}.state().config.lr === 0.3")
    assert "dataset=xor" in page.url and "lr=0.3" in page.url   # the URL fragment
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(f"() => {API}.state().testAccuracy >= 0.95", timeout=90_000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function(f"() => !{API}.state().playing")
    s = state(page)
    assert s["testAccuracy"] >= 0.95 and s["config"]["dataset"] == "xor"

    # click neuron 2 of layer 1 on the page, then read the numbers it shows, unrounded
    page.get_by_role("button", name="neuron 2 of layer 1", exact=True).click()
    page.wait_for_selector("#equations h3:has-text('Neuron 2 of layer l = 1')")
    shown = {q: float(page.get_attribute(f"#equations [data-q={q}]", "data-exact"))
             for q in ("z", "a", "delta")}
    r = page.evaluate(f"{API}.select(1, 2)")
    assert shown == {q: r[q] for q in ("z", "a", "delta")}

    # the same weights and example through net.backprop, in a Network built here
    sizes, acts = r["sizes"], r["activations"]
    net = Network([Dense(a, b, act) for a, b, act in zip(sizes, sizes[1:], acts)],
                  cost=r["cost"], dtype=np.float64, seed=None)
    net.theta[...] = r["theta"]
    np.testing.assert_array_equal(net.theta, app.session.net.theta)
    x = np.array([r["example"]["a0"]])
    y = np.array([[r["example"]["y"]]])
    zs, a = net.forward(x, keep=True)
    g = net.backprop(x, y)
    assert abs(shown["z"] - zs[0][0, 1]) <= 1e-9
    assert abs(shown["a"] - a[1][0, 1]) <= 1e-9
    assert abs(shown["delta"] - g.delta[0][0, 1]) <= 1e-9
    print(f"XOR test accuracy {s['testAccuracy']} at epoch {s['epoch']}; neuron 2 of layer 1: "
          f"|z - backprop| = {abs(shown['z'] - zs[0][0, 1]):.1e}, |a - .| = "
          f"{abs(shown['a'] - a[1][0, 1]):.1e}, |delta - .| = "
          f"{abs(shown['delta'] - g.delta[0][0, 1]):.1e}")
    assert r["equation"] == "BP2" and r["layer"] == 1 and r["neuron"] == 2
    assert not page.errors
    page.close()


def test_keyboard_only_every_control_is_reachable_and_labelled(browser, app):
    page = open_page(browser, app)
    controls = page.evaluate("""() => [...document.querySelectorAll(
        'button:not([disabled]), select:not([disabled]), input:not([disabled]), a[href], '
        + '[tabindex="0"]')].map((el, i) => { el.dataset.kbd = i; return i; })""")
    seen, names = set(), {}
    for _ in range(2 * len(controls) + 10):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement;
            if (!el || el.dataset.kbd === undefined) return null;
            const name = (el.getAttribute('aria-label') || (el.labels && el.labels[0] &&
                el.labels[0].textContent) || el.textContent || el.title || '').trim();
            return [Number(el.dataset.kbd), name]; }""")
        if info:
            seen.add(info[0])
            names[info[0]] = info[1]
    missing = page.evaluate("(ids) => ids.map(i => document.querySelector("
                            "`[data-kbd=\"${i}\"]`).outerHTML.slice(0, 80))",
                            sorted(set(controls) - seen))
    assert not missing, f"not reachable with Tab: {missing}"
    unnamed = [i for i, n in names.items() if not n]
    assert not unnamed, f"controls without a label: {unnamed}"
    print(f"keyboard: {len(seen)} of {len(controls)} controls reached with Tab, all labelled")

    # and they work from the keyboard: Step, a neuron, a link, the backward pass
    page.focus("#step")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => {API}.state().epoch === 1")
    page.focus(".node.unit[data-unit='1:0']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#equations h3:has-text('Neuron 1 of layer l = 1')")
    page.focus("#links path[data-w='2:0:1']")
    page.keyboard.press(" ")
    page.wait_for_selector("#equations :text('BP4')")
    assert not page.errors
    page.close()


def test_backward_mode_cost_surface_and_the_configuration_in_the_url(browser, app):
    frag = "#dataset=spiral&hidden=3,3&features=x1,x2,sin(x1)&mode=gd&lr=0.1"
    page = open_page(browser, app, frag)
    page.wait_for_function(f"() => {API}.state().config.dataset === 'spiral'")
    cfg = state(page)["config"]
    assert cfg["hidden"] == [3, 3] and cfg["features"] == ["x1", "x2", "sin(x1)"]
    assert cfg["mode"] == "gd" and page.get_by_label("Descent (text 3.8)").input_value() == "gd"
    assert state(page)["sizes"] == [3, 3, 3, 1]
    for _ in range(3):
        page.get_by_role("button", name="Step").click()
    page.wait_for_function(f"() => {API}.state().epoch === 3")

    page.evaluate(f"{API}.backward(0)")          # 0: no timer, the test steps it
    page.wait_for_selector("#equations h3:has-text('layer l = 3 = L (output)')")
    assert "BP1" in page.inner_text("#equations")
    page.get_by_role("button", name="Next layer").click()
    page.wait_for_selector("#equations h3:has-text('layer l = 2')")
    assert "BP2" in page.inner_text("#equations")
    assert page.locator(".node.unit.hot").count() == 3

    page.get_by_label("Weight on the vertical axis").select_option('[1,2,1]')
    page.get_by_role("button", name="Draw cost surface").click()
    page.wait_for_selector("#surface-caption:has-text('The cost C over the training set')")
    assert "GD (all points per step)" in page.inner_text("#surface-caption")
    r = page.evaluate(f"{API}.surface([1, 1, 1], [2, 3, 3])")
    assert len(r["path"]) == 4                   # epoch 0 and three GD steps

    page.get_by_role("button", name="Add a hidden layer").click()
    page.wait_for_function(f"() => {API}.state().config.hidden.length === 3")
    page.get_by_role("button", name="Add a neuron to layer 3").click()
    page.wait_for_function(f"() => {API}.state().config.hidden[2] === 3")
    assert "hidden=3%2C3%2C3" in page.url
    assert not page.errors
    page.close()


def test_user_csv_feature_toggles_and_a_bad_file_through_the_page(browser, app, tmp_path):
    page = open_page(browser, app)
    good = tmp_path / "mine.csv"
    rows = [f"{a / 10},{b / 10},{'in' if a * a + b * b < 400 else 'out'}"
            for a in range(-30, 31, 6) for b in range(-30, 31, 6)]
    good.write_text("u,v,label\n" + "\n".join(rows) + "\n")
    page.get_by_label("Your own CSV").set_input_files(str(good))
    page.wait_for_selector("#status:has-text('Loaded 121 rows (classification)')")
    page.wait_for_function(f"() => {API}.state().config.dataset === 'csv'")
    bad = tmp_path / "bad.csv"
    bad.write_text("u,v,label\n1,x,in\n2,3,out\n")
    page.get_by_label("Your own CSV").set_input_files(str(bad))
    page.wait_for_selector("#status.bad:has-text('not a number')")
    page.get_by_role("button", name="input feature x1 squared").click()
    page.wait_for_function(f"() => {API}.state().config.features.includes('x1^2')")
    assert state(page)["sizes"][0] == 3
    page.get_by_role("button", name="Step").click()
    page.wait_for_function(f"() => {API}.state().epoch === 1")
    # the page's export links answer with a model file (its input map inside) and the
    # raw points
    size = page.evaluate("() => fetch('/api/export/model').then(r => r.arrayBuffer())"
                         ".then(b => b.byteLength)")
    assert size > 200
    head = page.evaluate("() => fetch('/api/export/data.csv').then(r => r.text())"
                         ".then(t => t.split(/\\r?\\n/)[0])")
    assert head == "x1,x2,label"
    errors = [e for e in page.errors if "400" not in e]   # the bad upload's 400 is expected
    assert not errors
    page.close()


def test_two_playgrounds_in_one_browser_keep_their_own_cookies(browser, app):
    other = PlaygroundServer().start()
    ctx = browser.new_context()
    try:
        a, b = ctx.new_page(), ctx.new_page()
        for page, srv in ((a, app), (b, other)):
            page.goto(srv.url)
            page.evaluate(f"{API}.ready")
        # both cookies live side by side (cookies ignore the port): each page still talks
        status = "() => fetch('/api/state').then(r => r.status)"
        assert a.evaluate(status) == 200 and b.evaluate(status) == 200
        names = sorted(c["name"] for c in ctx.cookies())
        assert names == sorted([app.cookie_name, other.cookie_name])
        assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in ctx.cookies())
        assert a.evaluate("() => document.cookie") == ""     # HttpOnly: no script sees it
    finally:
        ctx.close()
        other.stop()
