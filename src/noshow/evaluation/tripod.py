"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) filled for one ``noshow compare``
run: ``tripod.md``, written beside the report.

Each of the 27 items (with its parts) says where this run, or this repository, answers it: a
section of ``report.html``, a file of the report folder, a document of the repository, or, plainly,
that noshow does not. The items' wording is shortened; the answers are facts of the run
(``metrics.json``) where a fact is needed. The layout is the template ``templates/tripod.md.j2``.
"""

from __future__ import annotations

TRIPOD_FILE = "tripod.md"
TEMPLATE = "tripod.md.j2"
NOT_DONE = "**noshow does not.**"

# (item, topic, what it asks, where this run answers it); answers are format strings over
# :func:`facts`. Sections are report.html's headings; docs/ are the repository's documents.
ITEMS = (
    ("1", "Title", "Identify the study as developing or evaluating a multivariable prediction model, its "
     "population and outcome.", "report.html, title and header: development and internal evaluation of a "
     "model of appointment no-show at {place}."),
    ("2", "Abstract", "A structured abstract (TRIPOD+AI for Abstracts).", NOT_DONE + " The report opens with "
     "its Findings instead; there is no abstract."),
    ("3a", "Background", "Healthcare context, rationale, existing models.", "README.md (front page) and "
     "docs/evaluation.md, The published 7-day window: the published models on this data, rerun."),
    ("3b", "Background", "Target population, intended purpose in the care pathway, intended users.",
     "model_card.md, Intended use: prioritising reminder calls by clinic staff; not for denying care."),
    ("3c", "Background", "Known health inequalities between sociodemographic groups.", NOT_DONE + " No review "
     "of inequalities in attendance is made; report.html, Fairness audit, measures them in these data."),
    ("4", "Objectives", "Development, validation, or both.", "Both: development on the training rows and "
     "internal (split-sample) evaluation on held-out rows; no external validation."),
    ("5a", "Data", "Sources of development and evaluation data, rationale, representativeness.",
     "report.html header (source, SHA-256); the data: {source}. One public routine-care export "
     "(the Kaggle file); docs/evaluation.md for why the time split is read."),
    ("5b", "Data", "Dates of the data (start, end of accrual, follow-up).", "Appointment days {first_day} to "
     "{last_day}; model_card.md gives the days of each part."),
    ("6a", "Participants", "Setting, number and location of centres.", "Setting: {place}. The file names no "
     "centre: neighbourhood is the only place."),
    ("6b", "Participants", "Eligibility criteria.", "Every appointment in the file (docs/robustness.md, Files "
     "as clinics export them, for the rows the loader refuses or counts as quirks)."),
    ("6c", "Participants", "Treatments received, and how handled.", "SMS reminders (SMS_received) are a "
     "predictor and an audited subgroup; no other intervention is recorded in the data."),
    ("7", "Data preparation", "Pre-processing and quality checks, alike across groups?", "docs/robustness.md "
     "and `noshow check` (every quirk counted); the same pipeline for every row (docs/design.md, Features)."),
    ("8a", "Outcome", "Outcome, time horizon, how and when assessed, alike across groups?", "No-show = the "
     "file's No-show = Yes: the patient did not come to that appointment, recorded by the clinic on the "
     "day; the horizon is the appointment day. Assessed alike for every row."),
    ("8b", "Outcome", "Qualifications of outcome assessors (subjective outcomes).", "Not applicable: "
     "attendance is recorded, not judged."),
    ("8c", "Outcome", "Blinding of outcome assessment.", "Not applicable: recorded before and apart from any "
     "model."),
    ("9a", "Predictors", "Choice of initial predictors, any pre-selection.", "docs/design.md, Features, and "
     "why each is causal: every column of the file that is known when the call is made, and the patient's "
     "history from strictly earlier days."),
    ("9b", "Predictors", "Definition of every predictor, how and when measured.", "docs/design.md, Features; "
     "the {n_features} input columns are named in the model file's pipeline (and in model.onnx's metadata)."),
    ("9c", "Predictors", "Qualifications of predictor assessors (subjective predictors).", "Not applicable: "
     "every predictor is a recorded field."),
    ("10", "Sample size", "How the study size was arrived at; was it sufficient?", NOT_DONE + " No sample "
     "size calculation: all {rows:,} rows of the file are used ({events:,} no-shows); the bootstrap "
     "intervals in report.html say how precise each estimate is."),
    ("11", "Missing data", "How missing data were handled.", "The file has no missing values; the loader "
     "refuses a row with one and names it (docs/robustness.md). A patient's unseen history counts as none "
     "(model_card.md, Known limitations)."),
    ("12a", "Analysis", "How the data were used: partitioning.", "report.html header: the {split} split, "
     "{n_train:,} training, {n_val:,} validation (early stopping, calibration, threshold), {n_test:,} test rows."),
    ("12b", "Analysis", "Handling of predictors: functional form, rescaling.", "docs/design.md, Features: "
     "numeric features standardised (log1p where skewed), categories one-hot with an other column, "
     "all fitted on training rows only."),
    ("12c", "Analysis", "Type of model, building steps, hyperparameter tuning, internal validation.",
     "docs/design.md, The network, and docs/design.md, Ensembles; report.html, Settings; "
     "docs/experiments.md for how the defaults were chosen (validation rows only; `noshow tune`)."),
    ("12d", "Analysis", "Heterogeneity across clusters (e.g. hospitals).", NOT_DONE + " The file names no "
     "centre; neighbourhoods are audited as subgroups (report.html, Fairness audit and Calibration)."),
    ("12e", "Analysis", "Measures and plots of performance, and why.", "docs/evaluation.md; report.html, "
     "Results (PR AUC, ROC AUC, F1), Calibration (ECE, calibration-in-the-large, slope), Decisions "
     "(call lists, decision curve), Performance over time."),
    ("12f", "Analysis", "Model updating arising from the evaluation (e.g. recalibration).", "Each twin is "
     "recalibrated on validation rows (docs/evaluation.md, Calibration); nothing is updated after the "
     "test rows are scored. report.html, Performance over time, updates the network each day."),
    ("12g", "Analysis", "How predictions were calculated for evaluation.", "The same code as `noshow "
     "predict` (noshow.model.TrainedModel); `noshow export` writes the model as one ONNX graph."),
    ("13", "Class imbalance", "Imbalance methods, why, and recalibration.", "No resampling: the loss is "
     "unweighted (pos_weight {pos_weight}), the threshold is chosen on validation rows and the "
     "probabilities are recalibrated there (docs/evaluation.md)."),
    ("14", "Fairness", "Approaches to model fairness and their rationale.", "Measured, not corrected: "
     "report.html, Fairness audit (calibration gap, flag rate, call share per group) and calibration by "
     "subgroup; model_card.md, Intended use."),
    ("15", "Model output", "Output (probability, class); thresholds and how chosen.", "A calibrated "
     "probability, and the call list of each day's highest risks; the max-F1 threshold is chosen on "
     "validation rows (docs/evaluation.md, The threshold; docs/scoring.md, Flagging policies)."),
    ("16", "Training vs evaluation", "Differences between development and evaluation data.", "Same "
     "file, same setting and definitions; on the time split the test rows are later days "
     "(report.html header; model_card.md)."),
    ("17", "Ethical approval", "Ethics committee approval and consent.", NOT_DONE + " The data are a public, "
     "de-identified file; noshow sought no ethics approval."),
    ("18a", "Funding", "Source and role of funding.", NOT_DONE + " No funding is declared."),
    ("18b", "Conflicts of interest", "Conflicts of interest.", NOT_DONE + " None are declared."),
    ("18c", "Protocol", "Where the protocol can be accessed.", "No protocol was written in advance; "
     "docs/evaluation.md states the protocol the code follows."),
    ("18d", "Registration", "Study registration.", NOT_DONE + " The study is not registered."),
    ("18e", "Data sharing", "Availability of the data.", "Public: the Kaggle dataset "
     "joniarroba/noshowappointments (README.md); the repository ships no copy."),
    ("18f", "Code sharing", "Availability of the code.", "This repository; `noshow compare` reruns this "
     "report (report.html, Settings; metrics.json holds every number)."),
    ("19", "Patient and public involvement", "Patient and public involvement.", NOT_DONE + " No patients or "
     "public were involved."),
    ("20a", "Participants", "Flow of participants, with and without the outcome.", "report.html header "
     "(rows per part); {rows:,} appointments, {events:,} no-shows; model_card.md."),
    ("20b", "Participants", "Characteristics overall and per source: dates, predictors, outcome events.",
     "report.html, Fairness audit (rows and no-show rate per group of the test rows); `noshow check` "
     "summarises a file."),
    ("20c", "Participants", "Development vs evaluation distributions of key predictors.", "`noshow check "
     "--model` compares a file with the model's training profile (docs/robustness.md, A model that no "
     "longer fits the data); not written into this report."),
    ("21", "Model development", "Participants and events in each analysis.", "report.html header and "
     "metrics.json `data`; Performance over time gives the training rows of each day's model."),
    ("22", "Model specification", "The full model, to predict for new individuals; access restrictions.",
     "`noshow train` writes the model file (docs/design.md, The model file); `noshow export` writes it as "
     "ONNX (its metadata describes the feature pipeline); MIT licence (pyproject.toml)."),
    ("23a", "Model performance", "Performance with confidence intervals, also for key subgroups.",
     "report.html, Results (bootstrap intervals), Calibration (intervals overall and per subgroup), "
     "Fairness audit (per subgroup)."),
    ("23b", "Model performance", "Heterogeneity across clusters.", NOT_DONE + " No clusters are named in the "
     "data; Performance over time shows the spread over days."),
    ("24", "Model updating", "Results of any model updating.", "report.html, Calibration (before and after "
     "the validation map) and Performance over time (each day's updated network)."),
    ("25", "Interpretation", "Overall interpretation, including fairness.", "report.html, Findings and "
     "Fairness audit findings."),
    ("26", "Limitations", "Limitations: sample, size, overfitting, missing data; effects on bias.",
     "model_card.md, Known limitations; docs/scoring.md, Caveats."),
    ("27a", "Usability", "How poor or missing input data are assessed and handled in use.", "The loader "
     "refuses bad rows with their line (docs/robustness.md); `noshow check --model` flags drift."),
    ("27b", "Usability", "User interaction with the model, expertise required.", "docs/scoring.md and "
     "docs/usage.md: three commands, or the staff page (docs/serving.md); no statistics needed to use "
     "the call list."),
    ("27c", "Usability", "Next steps for research, applicability.", "README.md, Where next; an external "
     "validation on another clinic's data is the first."),
)


def facts(metrics: dict) -> dict:
    """The run's facts that the answers quote, from ``metrics.json``'s content."""
    from noshow.clinic.card import KAGGLE_PLACE, KAGGLE_SHA256

    d = metrics["data"]
    place = KAGGLE_PLACE if d.get("sha256") in KAGGLE_SHA256 else (
        "synthetic appointments (no place)" if d["synthetic"] else "the clinic that exported the file")
    days = [r["day"] for rows in metrics.get("rolling_origin", {}).get("twins", {}).values() for r in rows]
    return {"place": place, "source": d["source"], "rows": d["rows"], "events": round(d["rows"] * d["positive_rate"]),
            "split": d["split"], "n_train": d["n_train"], "n_val": d["n_val"], "n_test": d["n_test"],
            "n_features": d["n_features"], "pos_weight": metrics["config"]["pos_weight"],
            "first_day": d.get("first_day", "?"), "last_day": d.get("last_day", max(days, default="?"))}


def tripod_markdown(metrics: dict) -> str:
    """``tripod.md`` for the run whose ``metrics.json`` content is ``metrics``."""
    import jinja2

    known = facts(metrics)
    items = [{"item": item, "topic": topic, "asks": asks, "answer": answer.format(**known)}
             for item, topic, asks, answer in ITEMS]
    environment = jinja2.Environment(loader=jinja2.PackageLoader("noshow.evaluation", "templates"),
                                     autoescape=False, trim_blocks=True, keep_trailing_newline=True)
    return environment.get_template(TEMPLATE).render(items=items, data=metrics["data"],
                                                      not_done=sum(NOT_DONE in i["answer"] for i in items))
