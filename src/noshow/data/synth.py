"""Synthetic appointments in the exact Kaggle schema, with the true no-show probability of each row.

The generator draws patients, bookings and outcomes from a known model whose inputs are all things
:mod:`noshow.data.features` can see (lead time, age, neighbourhood, flags, weekday, SMS and the patient's
no-shows on strictly earlier days), so the best achievable score, the Bayes limit, is the score of
the ``true_probability`` column itself. Its logit has interactions, as the real data has (the
effects of a reminder and of past no-shows change with lead time; same-day booking and a
scholarship act differently with age), so that, as on the real file, the twins and boosted trees
beat logistic regression (default data: PR AUC 0.511 and 0.510 against 0.495, limit 0.526).
Marginals follow the real file: about 20% no-shows, a third same-day bookings (with few
no-shows), repeat patients, ~80 neighbourhoods of very unequal size.

Any size is generated in bounded memory, by blocks of :data:`BLOCK_ROWS` appointments of whole
patients (a patient's history depends only on the patient's own appointments, so a block is
self-contained); the default file is one block. Time and memory at 10^7 rows: docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl

from noshow.data import schema as S
from noshow.data.loader import Appointments, load
from noshow.files import atomic_path

DEFAULT_ROWS = 100_000
DEFAULT_SEED = 2016
# Rows generated at a time (at most ~1.5 kB each while a block is built); the default file is one block.
BLOCK_ROWS = 250_000
FIRST_DAY = dt.date(2016, 4, 29)
N_DAYS = 41  # 2016-04-29 .. 2016-06-08, as in the real file
N_NEIGHBOURHOODS = 80
TARGET_RATE = 0.20
# Relative weight of appointments by weekday, Mon..Sun, as in the real file (Sunday never).
WEEKDAY_WEIGHTS = np.array([22715, 25640, 25867, 17247, 19019, 39, 0], dtype=float)
WEEKDAY_EFFECT = np.array([0.05, 0.0, -0.02, -0.05, 0.08, 0.4, 0.0])


def _neighbourhood_names() -> list[str]:
    stems = ["JARDIM", "SANTA", "VILA", "PARQUE", "ILHA", "MONTE", "BELA", "NOVA"]
    places = ["CAMBURI", "MARTINS", "RUBIM", "VISTA", "ESPERANCA", "LUCIA", "HELENA", "ROSA",
              "AURORA", "MARIA"]
    return [f"{stems[i % len(stems)]} {places[i // len(stems) % len(places)]}" for i in range(N_NEIGHBOURHOODS)]


def _patients(rng: np.random.Generator, n: int, first: int = 0, model: dict | None = None) -> dict[str, np.ndarray]:
    """Per-patient attributes, arrays of length ``n``, for the patients numbered ``first .. first + n``
    (their ids are made from these numbers); the neighbourhood effects are ``model``'s, or drawn."""
    age = np.where(rng.random(n) < 0.12, rng.integers(0, 6, n), rng.triangular(0, 40, 100, n)).astype(int)
    popularity = 1.0 / np.arange(1, N_NEIGHBOURHOODS + 1) ** 0.9
    old = 1 / (1 + np.exp(-(age - 55) / 8))
    return {
        # distinct multiples of a large prime plus a small jitter: unique, 12-14 digits like the real IDs
        "id": 10**11 + (first + rng.permutation(n).astype(np.int64)) * 1_000_003 + rng.integers(0, 1000, n),
        "male": rng.random(n) < 0.35,
        "age": age,
        "neighbourhood": rng.choice(N_NEIGHBOURHOODS, size=n, p=popularity / popularity.sum()),
        "Scholarship": rng.random(n) < np.where((age > 5) & (age < 60), 0.12, 0.03),
        "Hipertension": rng.random(n) < 0.02 + 0.55 * old,
        "Diabetes": rng.random(n) < 0.01 + 0.2 * old,
        "Alcoholism": rng.random(n) < np.where(age > 18, 0.04, 0.0),
        "Handcap": np.where(rng.random(n) < 0.02, rng.integers(1, 3, n), 0),
        "neighbourhood_effect": rng.normal(0.0, 0.3, N_NEIGHBOURHOODS) if model is None else model["neighbourhood_effect"],
    }


def _static_logit(p: dict, who: np.ndarray, lead: np.ndarray, weekday: np.ndarray, sms: np.ndarray) -> np.ndarray:
    """The part of the true logit that does not depend on earlier outcomes.

    Besides one-variable effects it holds interactions, as the real data does, so that a model
    additive in its inputs (logistic regression on binned features) cannot reach the Bayes limit:
    a reminder helps only when it comes days ahead, a same-day booking protects children and the
    old more than young adults, and a scholarship matters for young adults only.
    """
    age = p["age"][who]
    ahead = lead >= 7
    young_adult = (age >= 15) & (age < 35)
    return (
        1.6 * (lead > 0)
        + 0.25 * np.log1p(lead)
        + 0.45 * np.exp(-(((age - 20) / 12) ** 2))
        - 0.006 * (age - 37)
        + p["neighbourhood_effect"][p["neighbourhood"][who]]
        + 0.1 * p["Scholarship"][who]
        - 0.15 * p["Hipertension"][who]
        + 0.1 * p["Diabetes"][who]
        + 0.25 * p["Alcoholism"][who]
        + WEEKDAY_EFFECT[weekday]
        # interactions
        + np.where(ahead, -0.7, 0.3) * sms
        + 0.7 * (lead == 0) * young_adult - 0.6 * (lead == 0) * (age >= 60)
        + 0.6 * p["Scholarship"][who] * young_adult
        + 0.5 * (lead > 30) * (age < 13)
    )


def _history_logit(prior: np.ndarray, prior_no_shows: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Earlier outcomes, weighing more the further ahead the appointment was booked (a patient who
    misses long-planned visits misses them again; same-day visits are kept whatever the past)."""
    rate = np.divide(prior_no_shows, prior, out=np.zeros_like(prior, dtype=float), where=prior > 0)
    weight = 0.3 + 1.4 * np.tanh(lead / 10)
    return weight * (1.4 * rate + 0.2 * np.log1p(prior_no_shows)) - 0.1 * np.log1p(prior)


def _intercept(static: np.ndarray) -> float:
    """Intercept that makes the mean probability TARGET_RATE (bisection; history ignored)."""
    low, high = -8.0, 4.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if np.mean(1 / (1 + np.exp(-(static + mid)))) < TARGET_RATE else (low, mid)
    return (low + high) / 2 - 0.12  # history adds about this much on average


def _patient_count(rows: int) -> int:
    """Patients of a block of ``rows`` appointments (about 1.8 appointments each)."""
    return max(1, int(rows * 0.56))


def _block(rng: np.random.Generator, rows: int, first_patient: int, first_appointment: int,
           model: dict | None) -> tuple[pl.DataFrame, dict]:
    """One block of ``rows`` appointments of its own patients, and the model it was drawn from.

    Patients get the ids of numbers ``first_patient ..`` (ids made from distinct numbers are
    distinct) and the appointments the ids ``5,000,000 + first_appointment ..``, in booking order
    within the block. ``model`` holds what all blocks share (the neighbourhood effects and the
    intercept); ``None`` draws it from this block, as the first block does.
    """
    n_patients = _patient_count(rows)
    patients = _patients(rng, n_patients, first_patient, model)
    # Heavy-tailed visit propensity gives repeat patients (and some on the same day).
    propensity = rng.lognormal(0.0, 1.0, n_patients)
    who = rng.choice(n_patients, size=rows, p=propensity / propensity.sum())
    weekday_of = np.array([(FIRST_DAY + dt.timedelta(days=d)).weekday() for d in range(N_DAYS)])
    day = rng.choice(N_DAYS, size=rows, p=WEEKDAY_WEIGHTS[weekday_of] / WEEKDAY_WEIGHTS[weekday_of].sum())
    same_day = rng.random(rows) < 0.35
    lead = np.where(same_day, 0, np.minimum(np.ceil(rng.lognormal(np.log(9), 0.9, rows)), 179)).astype(int)
    sms = (lead >= 3) & (rng.random(rows) < 0.57)
    static = _static_logit(patients, who, lead, weekday_of[day], sms)
    if model is None:
        model = {"neighbourhood_effect": patients["neighbourhood_effect"], "intercept": _intercept(static)}
    static += model["intercept"]

    # A patient's history is made of the patient's own appointments only, all in this block.
    prior = np.zeros(n_patients)
    prior_no_shows = np.zeros(n_patients)
    probability = np.empty(rows)
    no_show = np.zeros(rows, dtype=bool)
    for d in range(N_DAYS):  # outcomes of a day only become history for later days
        today = np.flatnonzero(day == d)
        them = who[today]
        probability[today] = 1 / (1 + np.exp(-(static[today] + _history_logit(prior[them], prior_no_shows[them], lead[today]))))
        no_show[today] = rng.random(len(today)) < probability[today]
        np.add.at(prior, them, 1)
        np.add.at(prior_no_shows, them, no_show[today])
    del static, prior, prior_no_shows

    booked_seconds = rng.integers(7 * 3600, 20 * 3600, rows)
    appointment = np.datetime64(FIRST_DAY, "D") + day
    scheduled = (appointment - lead).astype("datetime64[s]") + booked_seconds
    order = np.argsort(scheduled, kind="stable")
    names = np.array(_neighbourhood_names())

    def flag(values):
        return values.astype(int).astype(str)

    def text(moments) -> np.ndarray:
        return pl.Series(moments.astype("datetime64[us]")).dt.strftime(S.DATETIME_FORMAT).to_numpy()

    columns = {
        S.PATIENT_ID: patients["id"][who].astype(str),
        S.APPOINTMENT_ID: (5_000_000 + first_appointment + np.arange(rows)).astype(str)[np.argsort(order)],
        S.GENDER: np.where(patients["male"][who], "M", "F"),
        S.SCHEDULED_DAY: text(scheduled),
        S.APPOINTMENT_DAY: text(appointment.astype("datetime64[s]")),
        S.AGE: patients["age"][who].astype(str),
        S.NEIGHBOURHOOD: names[patients["neighbourhood"][who]],
        **{c: flag(patients[c][who]) for c in S.CONDITION_FLAGS},
        S.HANDICAP: patients["Handcap"][who].astype(str),
        S.SMS_RECEIVED: flag(sms),
        S.LABEL: np.where(no_show, "Yes", "No"),
        S.TRUE_PROBABILITY: np.round(probability, 6).astype(str),
    }
    return pl.DataFrame(columns).select(*S.ALL_COLUMNS, S.TRUE_PROBABILITY), model


def synthetic_blocks(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED,
                     block_rows: int = BLOCK_ROWS) -> Iterator[pl.DataFrame]:
    """The ``rows`` appointments of :func:`synthesize` as consecutive tables of at most
    ``block_rows`` rows, each generated only when asked for (memory: one block).

    Each block holds whole patients (their every appointment, outcome and history), so blocks are
    independent given the shared model (neighbourhood effects and intercept, from the first
    block). The first block is drawn from ``default_rng(seed)``, block ``k > 0`` from
    ``SeedSequence(seed, spawn_key=(k - 1,))`` (``SeedSequence(seed).spawn``'s children, made
    directly so that block ``k`` costs nothing for the blocks before it): a file of at most
    ``block_rows`` rows is the one-block algorithm's, and the same seed always gives the same blocks.
    """
    model, first_patient = None, 0
    for k, first_appointment in enumerate(range(0, rows, block_rows)):
        size = min(block_rows, rows - first_appointment)
        rng = np.random.default_rng(seed if k == 0 else np.random.SeedSequence(seed, spawn_key=(k - 1,)))
        frame, model = _block(rng, size, first_patient, first_appointment, model)
        first_patient += _patient_count(size)
        yield frame


def synthesize(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, block_rows: int = BLOCK_ROWS) -> pl.DataFrame:
    """Appointments as text columns in the Kaggle schema plus ``true_probability``, in memory
    (:func:`synthetic_blocks` concatenated; :func:`write_synthetic` writes any size in bounded memory)."""
    return pl.concat(list(synthetic_blocks(rows, seed, block_rows)))


def write_synthetic(path: str | Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED,
                    block_rows: int = BLOCK_ROWS) -> Path:
    """Write :func:`synthesize`'s table as CSV (gzip when the name ends in .gz), atomically, one
    block at a time (memory: one block, whatever ``rows``). The same arguments give the same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if str(path).endswith(".gz"):
            import gzip

            # The gzip header gets the final name and no time stamp, not the temporary name and now.
            handle = gzip.GzipFile(Path(path).name, "wb", compresslevel=6, fileobj=raw, mtime=0)
        else:
            handle = raw
        with handle:
            for k, frame in enumerate(synthetic_blocks(rows, seed, block_rows)):
                frame.write_csv(handle, include_header=k == 0)
    return Path(path)


def synthetic_appointments(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Appointments:
    """Generate, write and load synthetic data through the same loader as real files."""
    with tempfile.TemporaryDirectory() as folder:
        data = load(write_synthetic(Path(folder) / "synthetic.csv", rows, seed))
    data.source = f"synthetic data (noshow synth --rows {rows} --seed {seed})"
    data.synthetic = True
    return data
