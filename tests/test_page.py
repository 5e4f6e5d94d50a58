"""The claims officers' page: in a real browser (Debian's headless Chromium, tests/browser.py) against
a real `slarules serve` process with a token file, one of each for the module.

What the page shows is checked against the library's own verdict and explanation of the same case
(and, for the downloaded file, against `slarules adjudicate --format json`'s bytes). The routes the
page needs (`/v1/examples`, `/v1/labels`, the token form) are tested without a browser, so they
run where Chromium is missing too.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import browser as chromium
import pytest
import yaml
from conftest import EXAMPLES, ROOT
from serving import Server

TOKEN = "page-test-token-0123456789"
PAGE = ROOT / "slarules" / "serve" / "page"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("page-server")
    (folder / "tokens").write_text(f"{TOKEN}\n")
    with Server("--token-file", str(folder / "tokens")) as running:
        yield running


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Any:
    why = chromium.missing()
    if why:
        pytest.skip(why)
    with chromium.Browser(downloads=downloads) as started:
        yield started


def origin(server: Server) -> str:
    return f"{server.scheme}://{server.host}:{server.port}"


@pytest.fixture
def page(browser: chromium.Browser, server: Server) -> chromium.Browser:
    """The page afresh: its token taken as the cookie, nothing remembered, in its default language."""
    driver = browser.driver
    driver.get(f"{origin(server)}/?token={TOKEN}")
    driver.execute_script("localStorage.clear()")
    driver.get(f"{origin(server)}/")
    ready(browser)
    return browser


def ready(browser: chromium.Browser) -> None:
    browser.wait(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def pick(browser: chromium.Browser, example: str) -> None:
    from selenium.webdriver.support.ui import Select
    Select(browser.find("#example")).select_by_value(example)


def set_case(browser: chromium.Browser, text: str) -> None:
    """As a paste does: the textarea's text replaced, an input event fired."""
    browser.driver.execute_script("const a = document.getElementById('case'); a.value = arguments[0];"
                                  "a.dispatchEvent(new Event('input'));", text)


def click_and_settle(browser: chromium.Browser, css: str) -> None:
    """Click, then wait until the page's request is answered (the busy sign shown, then hidden)."""
    browser.find(css).click()
    browser.wait(lambda d: not browser.find("#busy").is_displayed())


def adjudicate(browser: chromium.Browser) -> None:
    click_and_settle(browser, "#adjudicate")
    browser.visible("#result")


def texts(browser: chromium.Browser, css: str) -> list[str]:
    return [e.text for e in browser.find_all(css)]


def example_text(name: str) -> str:
    return (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")


def expected(engine: Any, name: str, lang: str = "zh") -> dict[str, Any]:
    return json.loads(engine.adjudicate(yaml.safe_load(example_text(name)), lang=lang).to_json())


# ---- what the page asks the server for ------------------------------------------------------

def test_examples_are_every_shipped_case_with_its_text(server: Server) -> None:
    status, headers, body = server.request("GET", "/v1/examples", token=TOKEN)
    assert status == 200 and headers["content-type"].startswith("application/json")
    shown = json.loads(body)["examples"]
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert [x["name"] for x in shown] == [f.stem for f in files]
    for x, file in zip(shown, files, strict=True):
        text = file.read_text(encoding="utf-8")
        assert x["case"] == text
        assert x["title"] and text.startswith("# " + x["title"].split(" ")[0])


def test_the_examples_are_found_installed_and_in_a_checkout(tmp_path: Path) -> None:
    from slarules.serve.page_data import examples_dir
    assert examples_dir() == EXAMPLES                                    # this checkout (an editable install)
    (tmp_path / "slarules" / "examples").mkdir(parents=True)          # a wheel's layout: slarules/examples
    assert examples_dir(tmp_path / "slarules") == tmp_path / "slarules" / "examples"


def test_labels_are_the_cli_tables(server: Server) -> None:
    from slarules.verdict.explain import WORDS
    from slarules.verdict.assembly import PARTY_NAMES
    from slarules.verdict.text import LABELS
    status, _, body = server.request("GET", "/v1/labels", token=TOKEN)
    assert status == 200
    assert json.loads(body) == {lang: {"verdict": LABELS[lang], "party": PARTY_NAMES[lang], "explain": WORDS[lang]}
                                for lang in ("zh", "en")}
    assert server.request("GET", "/v1/labels")[0] == 401


def test_without_a_token_the_page_is_a_form_asking_for_one(server: Server) -> None:
    status, headers, body = server.request("GET", "/")
    assert status == 401 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (PAGE / "token.html").read_bytes() and b'name="token"' in body
    assert headers["www-authenticate"].startswith("Bearer")
    status, headers, body = server.request("GET", "/page/app.js")          # the page's parts: the JSON refusal
    assert status == 401 and json.loads(body)["error"]["field"] == "Authorization"
    cookie = {"Cookie": f"slarules_token={TOKEN}"}
    status, headers, _ = server.request("GET", "/?token=not-the-token-at-all", headers=cookie)
    assert (status, headers["location"]) == (303, "/") and "set-cookie" not in headers
    assert server.request("GET", "/", headers=cookie)[0] == 200


def test_the_strings_table_has_every_key_in_both_languages() -> None:
    """Each word the page says is in strings.js, in zh and en (say() throws on a missing key at run time)."""
    table = (PAGE / "strings.js").read_text(encoding="utf-8")
    blocks = {lang: re.search(rf"^  {lang}: {{\n(.*?)^  }},", table, re.DOTALL | re.MULTILINE) for lang in ("zh", "en")}
    keys = {lang: set(re.findall(r"^ {4}(\w+):", m.group(1), re.MULTILINE)) for lang, m in blocks.items() if m}
    assert keys["zh"] and keys["zh"] == keys["en"]
    used = set(re.findall(r'data-t="(\w+)"', (PAGE / "index.html").read_text(encoding="utf-8")))
    for script in PAGE.glob("*.js"):
        used |= set(re.findall(r"""\bsay\(\s*["'](\w+)["']""", script.read_text(encoding="utf-8")))
    assert used == keys["zh"], f"missing: {used - keys['zh']}, unused: {keys['zh'] - used}"


def test_the_page_fetches_nothing_from_elsewhere() -> None:
    """Offline: no address but the SVG namespace in any of the page's files (no CDN, no web font)."""
    for file in PAGE.iterdir():
        found = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", file.read_text(encoding="utf-8")))
        assert found <= {"http://www.w3.org/2000/svg"}, (file.name, found)


# ---- in the browser ---------------------------------------------------------------------------

@pytest.mark.parametrize("example", ["tb4-unsigned-sender-lost", "uc2-out-of-time", "tb9-short-contents"])
def test_an_example_is_adjudicated_and_its_verdict_shown(page: chromium.Browser, server: Server, engine: Any,
                                                        example: str) -> None:
    from slarules.verdict.assembly import PARTY_NAMES
    from slarules.verdict.text import LABELS
    pick(page, example)
    assert page.find("#case").get_attribute("value") == example_text(example)
    adjudicate(page)
    v = expected(engine, example)
    party, kind = PARTY_NAMES["zh"], LABELS["zh"]["kind"]
    rows = [[td.text for td in row.find_elements("css selector", "td")] for row in page.find_all("tr.finding")]
    assert rows == [[f["clause"], kind.get(f["kind"], f["kind"]), party[f["party"]], f["station"] or "",
                     *(a if a != "0.00" else "" for a in (f["fine_cny"], f["refund_cny"], f["compensation_cny"]))]
                    for f in v["findings"]]
    assert texts(page, "tr.finding-message td.message") == [f["message"] for f in v["findings"]]
    payers = sorted({*v["fines_cny"], *v["compensation_cny"]})
    totals = [[td.text for td in row.find_elements("css selector", "td")] for row in page.find_all("tr[data-payer]")]
    assert totals == [[party.get(p, p), v["fines_cny"].get(p, ""), v["compensation_cny"].get(p, "")] for p in payers]
    assert page.find(".refunds strong").text == v["refunds_cny"]
    timeline = [(g.get_attribute("data-name"), g.get_attribute("class")) for g in page.find_all("svg.timeline g.row")]
    assert timeline == [(d["name"], f"row {d['status']}") for d in v["deadlines"]]
    assert texts(page, "#missing li") == v["missing"]
    assert texts(page, "#not-covered li") == v["not_covered"]
    _, headers, _ = server.request("POST", "/v1/adjudicate", example_text(example).encode(), token=TOKEN,
                                   content_type="application/yaml")
    assert page.find("dd.code").text == headers["x-decision-id"]
    assert page.find("#waybill").text == v["waybill"]
    assert not page.console_errors()


def test_the_deadlines_are_drawn_due_against_actual(page: chromium.Browser, engine: Any) -> None:
    """Each row's diamond (due) and dot (actual) sit at their instants on the one axis: left to right in time."""
    pick(page, "nr4-total-delay")
    adjudicate(page)
    v = expected(engine, "nr4-total-delay")
    drawn = page.driver.execute_script("""
        return [...document.querySelectorAll('svg.timeline g.row')].map(g => {
          const due = g.querySelector('path.due').getBBox(), dot = g.querySelector('circle.actual');
          return [due.x + due.width / 2, dot ? Number(dot.getAttribute('cx')) : null];
        });""")
    from datetime import datetime
    instants = [(datetime.fromisoformat(d["due"]), datetime.fromisoformat(d["actual"]) if d["actual"] else None)
                for d in v["deadlines"]]
    points = [(x, t) for (due_x, actual_x), (due, actual) in zip(drawn, instants, strict=True)
              for x, t in ((due_x, due), (actual_x, actual)) if t is not None]
    in_time = [x for x, _ in sorted(points, key=lambda p: p[1])]
    assert in_time == sorted(in_time) and in_time[0] < in_time[-1]
    assert all((actual_x is None) == (d["actual"] is None) for (_, actual_x), d in zip(drawn, v["deadlines"]))


def test_the_language_switch(page: chromium.Browser, engine: Any) -> None:
    pick(page, "tb1-late")
    adjudicate(page)
    zh = expected(engine, "tb1-late", "zh")
    assert page.find("td.message").text == zh["findings"][0]["message"]
    assert page.driver.execute_script("return document.documentElement.lang") == "zh-CN"
    assert page.find("[data-t=adjudicate]").text == "裁决"
    page.find("[data-lang=en]").click()
    en = expected(engine, "tb1-late", "en")
    page.wait(lambda d: page.find("td.message").text == en["findings"][0]["message"])   # asked again in English
    assert page.driver.execute_script("return document.documentElement.lang") == "en"
    assert page.find("[data-t=adjudicate]").text == "Adjudicate"
    assert page.find("#findings th").text == "Clause"
    assert page.find("#deadlines svg g.row text.delta").text.startswith("breached")
    page.driver.refresh()                         # the choice is remembered
    ready(page)
    assert page.find("[data-t=adjudicate]").text == "Adjudicate"
    page.find("[data-lang=zh]").click()
    assert page.find("[data-t=adjudicate]").text == "裁决"


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


BAD = {
    # a value the contract refuses (YAML, in a flow mapping far to the right)
    "yaml-value": ("tb4-unsigned-sender-lost", "weight_kg: 8.5", "weight_kg: -3", "application/yaml"),
    # JSON that does not parse, after wide and astral characters on its line
    "json-syntax": (None, None, '{"waybill": "BX1",\n "product": "taobao", "note" "📦运单号码"}', "application/json"),
    "json-after-wide": (None, None, '{\n  "waybill": "📦运单号码", "product" "taobao"\n}', "application/json"),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_case_shows_its_located_error_beside_the_field(page: chromium.Browser, server: Server,
                                                             bad: str) -> None:
    example, old, new, kind = BAD[bad]
    text = example_text(example).replace(old, new) if example else new
    status, _, body = server.request("POST", "/v1/adjudicate", text.encode(), token=TOKEN, content_type=kind)
    error = json.loads(body)["error"]
    assert status in (400, 422) and error["line"]
    set_case(page, text)
    click_and_settle(page, "#adjudicate")
    marker = page.visible("#marker")
    assert error["message"] in marker.text and (error.get("field") or "") in marker.text
    assert texts(page, "#gutter .bad") == [str(error["line"])]
    assert not page.find("#result").is_displayed()
    assert error["message"] in page.find("#error").text
    lines = text.split("\n")
    line = lines[error["line"] - 1]
    before = line[:error.get("column", 1) - 1]
    offset = sum(_utf16(r) + 1 for r in lines[:error["line"] - 1]) + _utf16(before)
    assert page.driver.execute_script("return document.getElementById('case').selectionStart") == offset
    # beside the field: the marker just under the error's line, its arrow under the column
    where = page.driver.execute_script("""
        const a = document.getElementById('case'), m = document.getElementById('marker');
        const s = getComputedStyle(a), box = a.getBoundingClientRect(), arrow = m.firstChild.getBoundingClientRect();
        const c = document.createElement('canvas').getContext('2d');
        c.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
        return {lineBottom: box.top + parseFloat(s.paddingTop) + arguments[0] * parseFloat(s.lineHeight) - a.scrollTop,
                column: box.left + parseFloat(s.paddingLeft) + c.measureText(arguments[1]).width - a.scrollLeft,
                top: m.getBoundingClientRect().top, arrow: arrow.left + arrow.width / 2,
                left: box.left, right: box.right};""", error["line"], before)
    assert abs(where["top"] - where["lineBottom"]) <= 4, where
    assert where["left"] <= where["column"] <= where["right"] and abs(where["arrow"] - where["column"]) <= 8, where
    set_case(page, text + "\n")                   # an edit: the error no longer stands
    assert not page.find("#marker").is_displayed() and not texts(page, "#gutter .bad")


def test_a_bad_as_of_is_shown_beside_its_input(page: chromium.Browser) -> None:
    pick(page, "tb1-late")
    page.find("#as-of").send_keys("yesterday")
    click_and_settle(page, "#adjudicate")
    message = page.visible("#as-of-error").text
    assert "yesterday" in message and "ISO 8601" in message
    assert "invalid" in page.find("#as-of").get_attribute("class")
    assert not page.find("#marker").is_displayed()


def test_explain_shows_each_fired_rule_with_its_counterfactuals(page: chromium.Browser, engine: Any) -> None:
    pick(page, "tb4-unsigned-sender-lost")
    adjudicate(page)
    click_and_settle(page, "#explain")
    page.visible("#explanation")
    x = json.loads(engine.explain(yaml.safe_load(example_text("tb4-unsigned-sender-lost")), lang="zh").to_json())
    fired = [r for r in x["rules"] if r["status"] in ("fired", "overridden")]
    fired.sort(key=lambda r: r["status"] != "fired")
    shown = page.find_all(".rules.fired article.rule")
    assert [a.get_attribute("data-rule") for a in shown] == [r["rule"] for r in fired]
    for article, rule in zip(shown, fired, strict=True):
        said = [e.text for e in article.find_elements("css selector", ".cf-text")]
        assert said == [c["text"] for c in rule["counterfactuals"]]
    assert sum(len(r["counterfactuals"]) for r in fired) > 0
    rest = page.find("details.rest")
    assert rest.find_element("css selector", "summary").text.startswith(f"其余规则 ({len(x['rules']) - len(fired)})")
    assert len(rest.find_elements("css selector", "article.rule")) == len(x["rules"]) - len(fired)


def test_download_and_copy_give_the_verdict_bytes(page: chromium.Browser, downloads: Path) -> None:
    name = "tb4-unsigned-sender-lost"
    cli = subprocess.run([sys.executable, "-m", "slarules", "adjudicate", str(EXAMPLES / f"{name}.yaml"),
                          "--format", "json"], capture_output=True, check=True).stdout
    pick(page, name)
    adjudicate(page)
    target = downloads / "BX7700000007.verdict.json"
    target.unlink(missing_ok=True)
    page.find("#download").click()
    page.wait(lambda d: target.exists() and target.read_bytes() == cli, timeout=30)
    page.driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": page.driver.execute_script("return location.origin"),
        "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    page.find("#copy").click()
    page.wait(lambda d: page.find("#copy").text == "已复制")
    pasted = page.driver.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert pasted.encode("utf-8") == cli


def test_an_uploaded_json_file(page: chromium.Browser, engine: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    case = yaml.safe_load(example_text("tb1-late"))
    file = tmp_path / "late.json"
    file.write_text(json.dumps(case, ensure_ascii=False, indent=1))
    page.find("#upload").send_keys(str(file))
    page.wait(lambda d: page.find("#case").get_attribute("value") == file.read_text())
    assert page.find("#format").text == "JSON"
    page.find("#case").send_keys(Keys.CONTROL, Keys.ENTER)          # the keyboard's way to adjudicate
    page.visible("#result")
    assert texts(page, "td.clause") == [f["clause"] for f in expected(engine, "tb1-late")["findings"]]
    assert page.find("#case").get_attribute("value") == file.read_text()


def test_without_a_token_the_browser_is_asked_for_one(browser: chromium.Browser, server: Server) -> None:
    driver = browser.driver
    driver.get(f"{origin(server)}/healthz")
    driver.delete_all_cookies()
    driver.get(f"{origin(server)}/")
    browser.visible("input[name=token]").send_keys("not-the-token-at-all")
    browser.navigate_by("#enter")
    browser.visible("input[name=token]").send_keys(TOKEN)        # refused: the form again
    browser.navigate_by("#enter")
    ready(browser)
    assert driver.current_url == f"{origin(server)}/"          # the token is not left in the address
    assert len(browser.find_all("#example option")) == 1 + len(list(EXAMPLES.glob("*.yaml")))


def test_a_token_typed_into_the_page_is_sent_as_bearer(page: chromium.Browser, engine: Any) -> None:
    """The cookie gone (a server restarted with other tokens, say): the page asks, then sends the token itself."""
    pick(page, "tb1-late")
    page.driver.delete_all_cookies()
    page.find("#adjudicate").click()
    page.visible("#token-dialog").find_element("css selector", "#token-input").send_keys(TOKEN)
    page.find("#token-ok").click()
    page.visible("#result")
    assert texts(page, "td.clause") == [f["clause"] for f in expected(engine, "tb1-late")["findings"]]
    assert page.driver.get_cookies() == []
    click_and_settle(page, "#adjudicate")                           # kept for the page's life: not asked again
    assert not page.find("#token-dialog").is_displayed() and page.find("#result").is_displayed()
