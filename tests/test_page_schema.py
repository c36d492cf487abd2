"""The staff page and the service, unchanged, with a model trained through a clinic's schema file:
a real browser uploads the clinic's own export (renamed columns, day-first dates, semicolons) and
lists what the API lists."""

from __future__ import annotations

import polars as pl
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'noshow[serve]'")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra has it)")

from conftest import CHROMIUM, run_main, served  # noqa: E402
from exports import RENAMED_SCHEMA, renamed_frame, write_schema  # noqa: E402
from test_serve_page import listed, screenshot, shown, upload  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is absent (apt-get install chromium)")]


@pytest.fixture(scope="module")
def clinic(small_csv, tmp_path_factory):
    """(the export of one day, the model trained through the schema on the whole export)."""
    folder = tmp_path_factory.mktemp("clinic")
    export = renamed_frame(small_csv)
    export.write_csv(folder / "export.csv", separator=";")
    export.filter(pl.col("ApptDate") == "10/05/2016").write_csv(folder / "day.csv", separator=";")
    schema = write_schema(RENAMED_SCHEMA, folder / "schema.toml")
    model = folder / "model.npz"
    result = run_main("train", "--data", str(folder / "export.csv"), "--schema", str(schema), "--out", str(model),
                      "--epochs", "2", "--hidden", "8", "--members", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    return folder / "day.csv", model


@pytest.fixture(scope="module")
def server(clinic, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with served(["--model", str(clinic[1])], log) as base:
        yield base, log


def test_the_page_lists_a_clinic_export_as_the_api_does(browser, server, clinic, tmp_path):
    day, _ = clinic
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(server[0] + "/")
        page.wait_for_function("document.querySelector('#model').textContent.startsWith('Model ')")
        upload(page, day, 20)
        assert shown(page) == listed(server, day, "calls_per_day=20")
        texts = page.eval_on_selector_all("tr.appt", "rows => rows.map(r => r.textContent)")
        answer = httpx.post(f"{server[0]}/call-list?calls_per_day=20", files={"file": (day.name, day.read_bytes())},
                            timeout=60).json()["appointments"]
        reasons = [row["reasons"].split("; ")[0].rsplit(" (", 1)[0] for row in answer]
        assert all(reason in text for reason, text in zip(reasons, texts))
        screenshot(page, tmp_path, "call-list-clinic-export.png")
    finally:
        page.close()

