"""The staff page in a real browser: headless Chromium driven by Playwright against a service
started as a user starts it (``noshow serve`` in its own process, on a free 127.0.0.1 port)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra has it)")

from conftest import CHROMIUM, served  # noqa: E402
from noshow.data import schema as S  # noqa: E402

SCREENSHOTS_ENV = "NOSHOW_SCREENSHOTS"  # a folder to keep the screenshots in (default: the test's tmp folder)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is absent (apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tiny_model_file, tmp_path_factory):
    """Base URL of ``noshow serve`` in a subprocess, and the file its log goes to."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with served(["--model", str(tiny_model_file)], log) as base:
        yield base, log


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.goto(server[0] + "/")
    opened.wait_for_function("document.querySelector('#model').textContent.startsWith('Model ')")
    yield opened
    context.close()


@pytest.fixture(scope="module")
def last_day_csv(real_data_path, tmp_path_factory) -> Path:
    """The real file's last appointment day, as a clinic would export it."""
    frame = pl.read_csv(real_data_path, infer_schema=False)
    last = frame[S.APPOINTMENT_DAY].str.slice(0, 10).max()
    path = tmp_path_factory.mktemp("real") / "last_day.csv"
    frame.filter(pl.col(S.APPOINTMENT_DAY).str.starts_with(last)).write_csv(path)
    return path


@pytest.fixture(scope="module")
def small_day_csv(small_csv, tmp_path_factory) -> Path:
    """One day (140 appointments) of the small synthetic file."""
    path = tmp_path_factory.mktemp("small") / "day.csv"
    frame = pl.read_csv(small_csv, infer_schema=False)
    frame.filter(pl.col(S.APPOINTMENT_DAY).str.starts_with("2016-05-10")).write_csv(path)
    return path


def listed(server, path: Path, query: str) -> list[int]:
    """The AppointmentIDs the API lists for the file, in its order."""
    answer = httpx.post(f"{server[0]}/call-list?{query}", files={"file": (path.name, path.read_bytes())}, timeout=60)
    return [row[S.APPOINTMENT_ID] for row in answer.json()["appointments"]]


def shown(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("tr.appt", "rows => rows.map(r => r.dataset.appointment)")]


def upload(page, path: Path, rows: int) -> None:
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"document.querySelectorAll('tr.appt').length === {rows}", timeout=60_000)
    page.wait_for_selector("#status[data-state=done]")


def set_capacity(page, calls: int) -> None:
    page.fill("#calls_per_day", str(calls))
    page.dispatch_event("#calls_per_day", "change")
    page.wait_for_function(f"document.querySelectorAll('tr.appt').length === {calls}", timeout=60_000)
    page.wait_for_selector("#status[data-state=done]")


def screenshot(page, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.realdata
def test_the_real_last_day_is_listed_highest_risk_first_at_the_capacity_set(page, server, last_day_csv, tmp_path):
    upload(page, last_day_csv, 20)
    set_capacity(page, 12)
    risks = [float(p) for p in page.eval_on_selector_all("tr.appt td.risk", "cells => cells.map(c => c.dataset.probability)")]
    assert shown(page) == listed(server, last_day_csv, "calls_per_day=12")
    assert risks == sorted(risks, reverse=True)
    assert screenshot(page, tmp_path, "call-list-real-last-day.png").read_bytes()[:4] == b"\x89PNG"


def test_the_default_capacity_lists_twenty_in_the_services_order(page, server, small_day_csv):
    upload(page, small_day_csv, 20)
    assert shown(page) == listed(server, small_day_csv, "calls_per_day=20")


def test_changing_the_capacity_changes_the_rows_shown(page, server, small_day_csv, tmp_path):
    upload(page, small_day_csv, 20)
    set_capacity(page, 5)
    assert shown(page) == listed(server, small_day_csv, "calls_per_day=5")
    assert screenshot(page, tmp_path, "call-list-small.png").stat().st_size > 10_000


def test_a_share_of_the_day_lists_its_rounded_up_count(page, small_day_csv):
    upload(page, small_day_csv, 20)
    page.check("input[name=policy][value=call_share]")
    page.wait_for_function("document.querySelectorAll('tr.appt').length === 14", timeout=60_000)  # ceil(0.1 x 140)
    assert page.text_content("#summary").startswith("14 of 140 appointments to call")


def test_without_a_store_a_result_is_kept_in_this_browser_after_a_reload(page, small_day_csv):
    upload(page, small_day_csv, 20)
    first = shown(page)[0]
    page.select_option(f"tr[data-appointment='{first}'] select", "reached")
    page.reload()
    upload(page, small_day_csv, 20)
    assert page.input_value(f"tr[data-appointment='{first}'] select") == "reached"
    assert page.input_value(f"tr[data-appointment='{shown(page)[1]}'] select") == ""
    assert "this browser only" in page.text_content(f"tr[data-appointment='{first}'] small.who")


def test_download_gives_the_list_as_csv(page, server, small_day_csv, tmp_path):
    upload(page, small_day_csv, 20)
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "list.csv"
    download.value.save_as(saved)
    assert pl.read_csv(saved)[S.APPOINTMENT_ID].to_list() == listed(server, small_day_csv, "calls_per_day=20")


def test_printing_hides_the_controls_and_keeps_the_list(page, small_day_csv, tmp_path):
    upload(page, small_day_csv, 20)
    page.emulate_media(media="print")
    assert page.is_hidden("#controls") and page.is_visible("tr.appt")
    screenshot(page, tmp_path, "call-list-print.png")


def test_the_page_fetches_nothing_from_elsewhere(browser, server):
    context = browser.new_context()
    opened = context.new_page()
    requested = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.goto(server[0] + "/")
    opened.wait_for_load_state("networkidle")
    context.close()
    assert requested and all(url.startswith(server[0] + "/") for url in requested)


def test_the_servers_log_holds_paths_but_no_patient_data(page, server, small_day_csv):
    upload(page, small_day_csv, 20)
    log = server[1].read_text()
    ids = pl.read_csv(small_day_csv, infer_schema=False)
    assert "POST /call-list" in log
    assert not [i for i in [*ids[S.APPOINTMENT_ID], *ids[S.PATIENT_ID]] if i in log]
