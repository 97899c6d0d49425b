"""The inspector in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by scripts/test.sh) drives the sidecar's ``/ui`` page on a
loopback uvicorn, and opens a ``ragzip compress --html`` report from a file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragzip.adapters.rest import ServerSettings, create_app

selenium = pytest.importorskip("selenium", reason="selenium is a dev dependency")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

KEY = "inspector-key"
QUESTION = "Which river flows through Paris?"
DOCUMENTS = [
    {
        "id": "paris",
        "text": "Paris is the capital of France. The Seine flows through Paris. "
        "It has many museums and about two million inhabitants.",
    },
    {
        "id": "berlin",
        "text": "Berlin is the capital of Germany. The Spree flows through Berlin. "
        "Berlin is known for its clubs.",
    },
    {"id": "fruit", "text": "Bananas are yellow fruit. They grow in tropical climates."},
]
MAX_BODY = 60_000


def _binary(*names: str) -> str | None:
    return next((found for n in names if (found := shutil.which(n))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = _binary("chromium", "chromium-browser")
    driver_path = _binary("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Chromium and chromedriver are not installed (scripts/test.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1500",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(serve_app: Any) -> Iterator[str]:
    settings = ServerSettings(
        compressor="extractive", api_key=KEY, warm_up=False, max_body_bytes=MAX_BODY
    )
    with serve_app(create_app(settings)) as url:
        yield url


def _wait(driver: Any, condition: Any, timeout: float = 180) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def _message(driver: Any) -> str:
    box = _wait(driver, ec.visibility_of_element_located((By.ID, "message")), 30)
    return str(box.text)


def _set(driver: Any, element_id: str, value: str) -> None:
    """Sets a field's value (typing a long text key by key would take minutes)."""
    driver.execute_script(
        "document.getElementById(arguments[0]).value = arguments[1];", element_id, value
    )


def _submit(driver: Any) -> None:
    driver.execute_script("document.getElementById('message').hidden = true;")
    driver.find_element(By.ID, "run").click()


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_page_needs_the_api_key(server: str) -> None:
    assert httpx.get(f"{server}/ui").status_code == 401
    assert httpx.get(f"{server}/ui", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = httpx.get(f"{server}/ui", auth=("anyone", KEY))  # a browser's Basic prompt
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_inspector_shows_what_the_api_kept(browser: Any, server: str, tmp_path: Path) -> None:
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {KEY}"}}
    )
    browser.get(f"{server}/ui")
    _wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    boxes = browser.find_elements(By.CSS_SELECTOR, "#compressors input:checked")
    assert [b.get_attribute("value") for b in boxes] == ["extractive"]  # the server's default

    # bad input gets a clear message, and the page keeps working
    _set(browser, "query", "   ")
    _set(browser, "documents", "Some text.")
    _submit(browser)
    assert "Enter a question" in _message(browser)
    _set(browser, "query", QUESTION)
    _set(browser, "documents", '[{"text": "unclosed"')
    _submit(browser)
    assert "not valid JSON" in _message(browser)
    _set(browser, "documents", json.dumps([{"text": "word " * (MAX_BODY // 4)}]))
    _submit(browser)
    assert "max_body_bytes" in _message(browser)
    _set(browser, "documents", '[{"id": 1}]')
    _submit(browser)
    assert 'object with a "text" string' in _message(browser)

    # a real compression, beside a second compressor
    browser.find_element(By.CSS_SELECTOR, "#compressors input[value='truncate']").click()
    _set(browser, "documents", json.dumps(DOCUMENTS))
    _set(browser, "ratio", "3")
    _submit(browser)
    run = "[data-run='extractive'] article.doc"
    _wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, run)))
    assert not browser.find_element(By.ID, "message").is_displayed()
    names = [r.get_attribute("data-run") for r in browser.find_elements(By.CSS_SELECTOR, ".run")]
    assert names == ["extractive", "truncate"]
    shown = {
        article.get_attribute("data-id"): "".join(
            m.get_attribute("textContent") for m in article.find_elements(By.CSS_SELECTOR, "mark")
        )
        for article in browser.find_elements(By.CSS_SELECTOR, run)
    }

    api = httpx.post(
        f"{server}/v1/compress",
        json={"query": QUESTION, "documents": DOCUMENTS, "budget": 3},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=120,
    )
    assert api.status_code == 200, api.text
    texts = {d["id"]: d["text"] for d in DOCUMENTS}
    expected = dict.fromkeys(texts, "")
    for kept in api.json()["documents"]:
        text = texts[kept["source_id"]]
        expected[kept["source_id"]] += "".join(text[s:e] for s, e in kept["spans"])
    assert shown == expected
    assert "The Seine flows through Paris." in shown["paris"]
    for article in browser.find_elements(By.CSS_SELECTOR, ".run article.doc"):
        whole = article.find_element(By.CSS_SELECTOR, ".text").get_attribute("textContent")
        assert whole == texts[article.get_attribute("data-id")]  # kept and dropped: all of it
    dropped = browser.find_elements(By.CSS_SELECTOR, ".run article.doc .dropped")
    assert sum(len(d.get_attribute("textContent")) for d in dropped) > 0
    figures = browser.find_element(By.CSS_SELECTOR, ".run .figures").text
    stats = api.json()["stats"]
    assert f"{stats['tokens_before']} → {stats['tokens_after']}" in figures

    shot = tmp_path / "inspector.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RAGZIP_UI_SCREENSHOT"):  # refreshes the README's picture
        shutil.copyfile(shot, os.environ["RAGZIP_UI_SCREENSHOT"])
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_html_report_opens_offline_and_is_valid(browser: Any, tmp_path: Path) -> None:
    html5lib = pytest.importorskip("html5lib")
    docs = tmp_path / "docs.json"
    docs.write_text(json.dumps(DOCUMENTS), encoding="utf-8")
    report = tmp_path / "case.html"
    command = [sys.executable, "-m", "ragzip.cli.main", "compress", "--query", QUESTION]
    command += ["--docs", str(docs), "--ratio", "3", "--compressor", "extractive"]
    done = subprocess.run(
        [*command, "--html", str(report)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    kept = json.loads(done.stdout)["documents"]
    markup = report.read_text("utf-8")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(markup)  # raises on any parse error
    assert not parser.errors

    browser.get_log("performance")  # drop what earlier pages logged
    browser.get(report.as_uri())
    _wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".run article.doc")), 30)
    marks = "".join(
        m.get_attribute("textContent") for m in browser.find_elements(By.CSS_SELECTOR, ".run mark")
    )
    texts = {d["id"]: d["text"] for d in DOCUMENTS}
    expected = "".join(texts[d["source_id"]][s:e] for d in kept for s, e in d["spans"])
    assert marks == expected
    outside = [u for u in _requests(browser) if not u.startswith(("file:", "data:"))]
    assert not outside, f"the report fetched {outside}"
