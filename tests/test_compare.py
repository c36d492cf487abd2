"""noshow compare: the protocol, metrics.json, and the report files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from conftest import assert_user_error, run_main
from noshow.evaluation.compare import COST_METRICS, REPORTED, TWINS, ModelRun, seconds_to_fraction, without_varying_fields
from noshow.evaluation.report import FIGURES
from noshow.stats.metrics import SCALAR_METRICS, best_f1_threshold, steady_f1_threshold

FAST = ("--epochs", "3", "--hidden", "32", "--members", "1", "--quiet")
REQUIRED = {*SCALAR_METRICS, "confusion_matrix"}


@pytest.fixture(scope="module")
def report(small_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = run_main("compare", "--data", str(small_csv), "--out", str(out), "--seeds", "2", *FAST)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "metrics.json").read_text())


def test_same_command_and_seed_give_the_same_metrics_but_timings_and_memory(report, small_csv, tmp_path):
    first_out, first = report
    result = run_main("compare", "--data", str(small_csv), "--out", str(tmp_path), "--seeds", "2", *FAST)
    assert result.returncode == 0, result.stderr
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert without_varying_fields(again) == without_varying_fields(first)
    assert again["models"]["numpy"]["train_seconds"] != first["models"]["numpy"]["train_seconds"]


def test_metrics_json_has_the_documented_layout(report):
    _, metrics = report
    assert metrics["schema_version"] == 1
    data_keys = {"source", "synthetic", "rows", "positive_rate", "split", "n_train", "n_val", "n_test", "seeds"}
    assert data_keys <= set(metrics["data"])
    assert set(metrics["models"]) == {"numpy", "torch", "logistic_regression", "gradient_boosting", "always_show",
                                      "no_show_rule"}
    for name, model in metrics["models"].items():
        assert REQUIRED <= set(model), name
        assert set(model["ci95"]) == {"pr_auc", "f1"}
    for twin in TWINS:
        assert set(COST_METRICS) <= set(metrics["models"][twin])
    assert metrics["reported"] == REPORTED  # the original study's figures, unchanged


@pytest.mark.parametrize("twin", sorted(REPORTED))
def test_the_original_studys_figures_agree_with_its_confusion_matrices(twin):
    figures = REPORTED[twin]
    (tn, fp), (fn, tp) = figures["confusion_matrix"]
    y_true = np.repeat([0, 0, 1, 1], [tn, fp, fn, tp])
    y_pred = np.repeat([0, 1, 0, 1], [tn, fp, fn, tp])
    assert round(f1_score(y_true, y_pred), 4) == figures["f1"]
    assert round(accuracy_score(y_true, y_pred), 4) == figures["accuracy"]


def test_several_seeds_give_mean_std_and_per_seed(report):
    _, metrics = report
    numpy_model = metrics["models"]["numpy"]
    assert [s["seed"] for s in numpy_model["per_seed"]] == metrics["data"]["seeds"] == [0, 1]
    assert numpy_model["pr_auc"] == pytest.approx(np.mean([s["pr_auc"] for s in numpy_model["per_seed"]]))
    assert numpy_model["std"]["pr_auc"] == pytest.approx(np.std([s["pr_auc"] for s in numpy_model["per_seed"]], ddof=1))


def test_twins_are_calibrated_on_validation_and_report_before_and_after(report):
    _, metrics = report
    for twin in TWINS:
        model = metrics["models"][twin]
        assert model["pr_auc"] == pytest.approx(model["pr_auc_uncalibrated"], abs=1e-12)  # strictly increasing map
        assert model["ece"] < model["ece_uncalibrated"] and model["brier"] < model["brier_uncalibrated"]


def test_decisions_are_call_lists_per_day_for_each_twin_and_the_rule(report):
    _, metrics = report
    assert set(metrics["decisions"]) == {"numpy", "torch", "no_show_rule"}
    for lists in metrics["decisions"].values():
        assert [row["share"] for row in lists] == [0.05, 0.10, 0.20]
        assert [row["calls"] for row in lists] == sorted(row["calls"] for row in lists)
        rate = metrics["data"]["positive_rate"]
        assert all(row["lift"] == pytest.approx(row["precision"] / rate, rel=0.05) for row in lists)
    curve = metrics["decision_curve"]["numpy"]
    assert len(curve["threshold"]) == len(curve["net_benefit"]) == len(curve["treat_all"])


def test_fairness_table_covers_every_attribute_and_its_shares_add_up(report):
    _, metrics = report
    for twin in TWINS:
        table = metrics["fairness"][twin]
        attributes = {row["attribute"] for row in table}
        assert attributes == {"gender", "age_band", "scholarship", "sms_received", "neighbourhood"}
        for attribute in attributes:
            rows = [row for row in table if row["attribute"] == attribute]
            assert sum(row["rows"] for row in rows) == metrics["data"]["n_test"]
            assert sum(row["call_share"] for row in rows) == pytest.approx(1.0)
            assert sum(row["no_show_share"] for row in rows) == pytest.approx(1.0)
        assert len([row for row in table if row["attribute"] == "neighbourhood"]) <= 11


def test_pdf_report_and_model_card_are_written(report):
    out, metrics = report
    from pypdf import PdfReader

    assert len(PdfReader(out / "report.pdf").pages) >= 6
    card = (out / "model_card.md").read_text()
    assert "## Intended use" in card and "**Not** for denying, penalising" in card
    assert f"{metrics['models']['numpy']['pr_auc']:.4f}" in card


def test_every_report_file_is_written(report):
    out, _ = report
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "report.html", "report.pdf", "tripod.md", "model_card.md", *FIGURES} == names
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names if n.endswith(".png"))


def test_html_report_is_self_contained(report):
    out, _ = report
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    # Nothing fetched from the network (outside the images: base64 text can spell "http" by chance).
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "http://" not in text and "https://" not in text


def test_report_names_data_split_and_machine(report):
    out, metrics = report
    text = (out / "report.html").read_text()
    assert metrics["data"]["source"] in text
    assert f"{metrics['data']['n_test']:,} test" in text
    assert "PyTorch 2." in text and "threads per twin" in text


NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def _html_table_cells(page: str) -> list[list[str]]:
    """The text of every cell of every table of an HTML page, table by table."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(page)
    return parser.tables


def test_pdf_holds_every_number_of_every_html_table_in_the_same_order(report):
    from pypdf import PdfReader

    out, _ = report
    tables = _html_table_cells((out / "report.html").read_text())
    text = " ".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    in_html = [n for table in tables for cell in table for n in NUMBER.findall(cell)]
    in_pdf = iter(NUMBER.findall(text))
    assert len(tables) >= 12 and len(in_html) > 500
    assert [n for n in in_html if n not in in_pdf] == []  # each found after the one before


def test_pdf_pages_are_a4_and_every_figure_is_embedded(report):
    from pypdf import PdfReader

    out, _ = report
    pages = PdfReader(out / "report.pdf").pages
    assert all((round(float(p.mediabox.width)), round(float(p.mediabox.height))) == (595, 842) for p in pages)
    # WeasyPrint lists every image in resources shared by all pages: count distinct pictures.
    assert len({image.data for p in pages for image in p.images}) == len(FIGURES)


def test_calibration_fit_is_given_overall_and_for_every_audited_subgroup(report):
    _, metrics = report
    for twin in TWINS:
        fit = metrics["calibration_fit"][twin]
        assert fit["overall"]["rows"] == metrics["data"]["n_test"]
        low, high = fit["overall"]["ci95"]["slope"]
        assert low < fit["overall"]["slope"] < high
        groups = [(r["attribute"], r["group"]) for r in fit["subgroups"]]
        assert groups == [(r["attribute"], r["group"]) for r in metrics["fairness"][twin]]


def test_rolling_origin_scores_each_of_the_last_ten_days_for_both_twins(report, small_data):
    _, metrics = report
    days = sorted({str(d) for d in small_data.frame["appointment_date"].to_list()})[-10:]
    for twin in TWINS:
        rows = metrics["rolling_origin"]["twins"][twin]
        assert [r["day"] for r in rows] == days
        assert [r["train_rows"] for r in rows] == sorted(r["train_rows"] for r in rows)


def test_report_gives_calibration_slope_by_subgroup_and_the_days_of_the_rolling_origin(report):
    out, metrics = report
    tables = _html_table_cells((out / "report.html").read_text())
    headings = [table[0] for table in tables]
    assert "calibration slope (95% interval)" in [cell for table in tables for cell in table[:6]]
    assert any("NumPy twin: slope" in table for table in tables) and any("PyTorch twin: slope" in table for table in tables)
    rolling = [table for table in tables if table[0] == "day scored"]
    assert len(rolling) == len(TWINS) and headings.count("day scored") == len(TWINS)
    assert [r["day"] for r in metrics["rolling_origin"]["twins"]["numpy"]] == [c for c in rolling[0] if c.startswith("20")]


def test_tripod_checklist_answers_every_item_of_the_27(report):
    from noshow.evaluation.tripod import ITEMS

    out, _ = report
    lines = [line for line in (out / "tripod.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert len(lines) == len(ITEMS)
    assert {int(re.match(r"\| (\d+)", line).group(1)) for line in lines} == set(range(1, 28))
    assert all(line.rstrip().endswith("|") and len(line.split(" | ")[3]) > 10 for line in lines)


def test_threshold_is_chosen_on_validation_not_test():
    rng = np.random.default_rng(0)
    y_val = rng.integers(0, 2, 400)
    p_val = np.clip(y_val * 0.3 + rng.random(400) * 0.7, 0, 1)
    y_test = rng.integers(0, 2, 400)
    p_test = rng.random(400)
    run = ModelRun("m")
    run.add(y_val, p_val, y_test, p_test)
    assert run.summary()["threshold"] == steady_f1_threshold(y_val, p_val)
    assert run.summary()["threshold"] != steady_f1_threshold(y_test, p_test)


def test_best_f1_threshold_maximises_f1():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.4 * y + rng.random(300) * 0.6, 0, 1)
    best = f1_score(y, p >= best_f1_threshold(y, p))
    assert all(best >= f1_score(y, p >= t) - 1e-12 for t in np.unique(p))


def _sklearn_best_f1_threshold(y, p):
    """The argmax of F1 along scikit-learn's precision-recall curve (its lowest threshold of equal F1s)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def test_best_f1_threshold_equals_scikit_learns_curve_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 400)
        p = np.round(0.3 * y + rng.random(400) * 0.7, 2)  # coarse: many ties
        assert best_f1_threshold(y, p) == _sklearn_best_f1_threshold(y, p)


def test_steady_threshold_is_the_median_of_the_resamples_best_thresholds():
    from noshow.stats.metrics import steady_f1_threshold

    rng = np.random.default_rng(6)  # data where the bagged threshold is not the plain argmax
    y = rng.integers(0, 2, 600)
    p = np.round(0.3 * y + rng.random(600) * 0.7, 3)
    draws = np.random.default_rng(0)
    expected = np.median([_sklearn_best_f1_threshold(y[i], p[i])
                          for i in (draws.integers(0, 600, 600) for _ in range(25))])
    assert steady_f1_threshold(y, p, draws=25, seed=0) == expected
    assert steady_f1_threshold(y, p, draws=25, seed=0) != best_f1_threshold(y, p)


def test_numpy_average_precision_equals_scikit_learn_with_ties():
    from sklearn.metrics import average_precision_score

    from noshow.stats.metrics import average_precision

    rng = np.random.default_rng(2)
    for _ in range(20):
        y = rng.integers(0, 2, 500)
        scores = np.round(rng.random(500) + 0.3 * y, 1)  # coarse: many ties
        assert average_precision(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_seconds_to_95pct_is_first_epoch_reaching_it():
    history = [{"val_pr_auc": v, "seconds": s} for v, s in ((0.30, 1.0), (0.38, 2.0), (0.39, 3.0), (0.40, 4.0))]
    assert seconds_to_fraction(history) == 2.0


def test_compare_into_a_file_path_is_a_user_error(small_csv, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert_user_error(run_main("compare", "--data", str(small_csv), "--out", str(target)), "is not a folder")


@pytest.mark.slow
def test_synthetic_compare_ranks_the_models_as_the_real_file_does(tmp_path):
    out = tmp_path / "synthetic"
    result = run_main("compare", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["synthetic"] is True
    assert "synthetic data" in (out / "report.html").read_text()
    models = {name: m["pr_auc"] for name, m in metrics["models"].items()}
    for twin in TWINS:
        # The generator's interactions are out of reach of a model additive in its inputs.
        assert models["logistic_regression"] + 0.01 <= models[twin] < models["bayes_limit"]
        assert models["bayes_limit"] - models[twin] < 0.02
        assert abs(models[twin] - models["gradient_boosting"]) < 0.005


@pytest.mark.realdata
@pytest.mark.slow
def test_real_data_twins_agree_within_0_005_and_beat_0_39_and_the_boosted_trees(real_data_path, tmp_path):
    out = tmp_path / "real"
    result = run_main("compare", "--data", str(real_data_path), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    models = json.loads((out / "metrics.json").read_text())["models"]
    assert abs(models["numpy"]["pr_auc"] - models["torch"]["pr_auc"]) < 0.005
    for twin in TWINS:
        assert models[twin]["pr_auc"] > 0.39
        assert models[twin]["pr_auc"] > models["gradient_boosting"]["pr_auc"]
