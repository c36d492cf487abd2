"""The staff page with a store (``noshow serve --db``) in real Chromium: call results go to the
service, survive reloads and restarts, and wait in the browser while the service does not answer."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra has it)")

from conftest import CHROMIUM, free_port, wait_for_health  # noqa: E402
from test_serve_page import screenshot, shown, upload  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is absent (apt-get install chromium)")]
DAY = "2016-05-10"


class Service:
    """``noshow serve --db`` in its own process, stopped and started again on the same port and store."""

    def __init__(self, model, db, log):
        self.model, self.db, self.log, self.port, self.process = model, db, log, free_port(), None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "noshow", "serve", "--model", str(self.model),
                                             "--db", str(self.db), "--port", str(self.port)],
                                            stdout=out, stderr=subprocess.STDOUT)
        wait_for_health(self.process, self.base, self.log)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def calls(self) -> dict[int, list[str]]:
        """AppointmentID -> results, as the service holds them for the day."""
        found: dict[int, list[str]] = {}
        for call in httpx.get(f"{self.base}/calls?day={DAY}").json()["calls"]:
            found.setdefault(call["appointment_id"], []).append(call["result"])
        return found


@pytest.fixture(scope="module")
def day_csv(small_csv, tmp_path_factory):
    import polars as pl

    from noshow.data import schema as S

    path = tmp_path_factory.mktemp("store-day") / "day.csv"
    frame = pl.read_csv(small_csv, infer_schema=False)
    frame.filter(pl.col(S.APPOINTMENT_DAY).str.starts_with(DAY)).write_csv(path)
    return path


@pytest.fixture
def service(tiny_model_file, tmp_path):
    running = Service(tiny_model_file, tmp_path / "noshow.db", tmp_path / "server.log")
    running.start()
    yield running
    if running.process.poll() is None:
        running.stop()


def open_page(browser, service):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(service.base + "/")
    page.wait_for_function("document.querySelector('#store').textContent.startsWith('Call results are saved')")
    return context, page


def choose(page, appointment: int, result: str) -> None:
    page.select_option(f"tr[data-appointment='{appointment}'] select", result)


def wait_sent(page) -> None:
    page.wait_for_function("JSON.parse(localStorage.getItem('noshow-call-queue') || '[]').length === 0", timeout=20_000)


def result_shown(page, appointment: int) -> str:
    return page.input_value(f"tr[data-appointment='{appointment}'] select")


def test_two_staff_on_one_day_both_see_both_results_after_a_reload(browser, service, day_csv, tmp_path):
    (first_context, first), (second_context, second) = open_page(browser, service), open_page(browser, service)
    upload(first, day_csv, 20)
    upload(second, day_csv, 20)
    a, b = shown(first)[:2]
    choose(first, a, "reached")
    choose(second, b, "no_answer")
    wait_sent(first)
    wait_sent(second)
    for page in (first, second):
        page.reload()
        page.wait_for_function("document.querySelector('#store').textContent.startsWith('Call results are saved')")
        upload(page, day_csv, 20)
        assert (result_shown(page, a), result_shown(page, b)) == ("reached", "no_answer")
        assert page.text_content(f"tr[data-appointment='{a}'] small.who").startswith("by anonymous")
    assert service.calls() == {a: ["reached"], b: ["no_answer"]}
    screenshot(first, tmp_path, "call-list-store.png")
    first_context.close()
    second_context.close()


def test_a_restarted_service_loses_no_result_and_receives_those_made_while_it_was_down(browser, service, day_csv):
    context, page = open_page(browser, service)
    upload(page, day_csv, 20)
    a, b = shown(page)[:2]
    choose(page, a, "wrong_number")
    wait_sent(page)
    service.stop()
    choose(page, b, "rescheduled")  # the service is down: the result waits in the browser
    page.wait_for_selector(f"tr[data-appointment='{b}'][data-pending='1']")
    service.start()
    wait_sent(page)
    assert service.calls() == {a: ["wrong_number"], b: ["rescheduled"]}
    context.close()


def test_results_queued_while_the_connection_is_dropped_arrive_once_it_is_back(browser, service, day_csv):
    context, page = open_page(browser, service)
    upload(page, day_csv, 20)
    ids = shown(page)[:3]
    context.set_offline(True)
    for appointment, result in zip(ids, ("reached", "cancelled", "no_answer")):
        choose(page, appointment, result)
    page.wait_for_selector("#status[data-state=error]")
    assert service.calls() == {}
    assert page.evaluate("JSON.parse(localStorage.getItem('noshow-call-queue')).length") == 3
    context.set_offline(False)
    wait_sent(page)
    assert service.calls() == {ids[0]: ["reached"], ids[1]: ["cancelled"], ids[2]: ["no_answer"]}
    context.close()
