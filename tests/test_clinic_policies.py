"""Flagging policies: capacity per day, share per day, cost rule, and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

from noshow.clinic.policies import Capacity, Cost, MaxF1, make_policy, rank_in_day
from noshow.errors import NoshowError


def three_days(seed: int = 0):
    """25, 4 and 12 appointments on days 10, 11 and 12, shuffled; random probabilities."""
    rng = np.random.default_rng(seed)
    day = rng.permutation(np.repeat([10, 11, 12], [25, 4, 12]))
    ids = rng.permutation(np.arange(1000, 1000 + len(day)))
    return rng.random(len(day)), day, ids


def test_rank_in_day_is_one_for_the_highest_risk_of_each_day():
    p = np.array([0.2, 0.9, 0.5, 0.7, 0.1])
    day = np.array([1, 1, 2, 1, 2])
    ids = np.array([5, 4, 3, 2, 1])
    assert rank_in_day(p, day, ids).tolist() == [3, 1, 1, 2, 2]


def test_equal_risks_are_ranked_by_appointment_id():
    p = np.array([0.3, 0.3, 0.3])
    assert rank_in_day(p, np.zeros(3), np.array([30, 10, 20])).tolist() == [3, 1, 2]


def test_calls_per_day_flags_exactly_min_k_n_highest_risks_of_each_day():
    p, day, ids = three_days()
    flagged = Capacity(calls_per_day=10).flags(p, day, ids, threshold=0.5)
    assert {d: int(flagged[day == d].sum()) for d in (10, 11, 12)} == {10: 10, 11: 4, 12: 10}
    for d in (10, 11, 12):
        on_day = day == d
        assert p[on_day & (flagged == 1)].min() >= p[on_day & (flagged == 0)].max(initial=-1)


def test_zero_calls_per_day_flags_nobody():
    p, day, ids = three_days()
    assert Capacity(calls_per_day=0).flags(p, day, ids, 0.5).sum() == 0


def test_call_share_flags_the_share_rounded_up_on_each_day():
    p, day, ids = three_days()
    flagged = Capacity(call_share=0.1).flags(p, day, ids, threshold=0.5)
    # ceil(0.1 x 25) = 3, ceil(0.1 x 4) = 1, ceil(0.1 x 12) = 2
    assert {d: int(flagged[day == d].sum()) for d in (10, 11, 12)} == {10: 3, 11: 1, 12: 2}


def test_call_share_of_an_exact_multiple_is_not_rounded_up_by_float_error():
    day = np.zeros(30)
    assert Capacity(call_share=0.1).flags(np.linspace(0, 1, 30), day, np.arange(30), 0.5).sum() == 3


def test_capacity_ties_at_the_cut_go_to_the_smaller_appointment_id():
    p = np.array([0.9, 0.5, 0.5, 0.5])
    flagged = Capacity(calls_per_day=2).flags(p, np.zeros(4), np.array([1, 40, 20, 30]), 0.5)
    assert flagged.tolist() == [1, 0, 1, 0]


def test_cost_policy_flags_exactly_where_p_e_v_exceeds_c():
    p = np.array([0.05, 0.1, 0.2, 0.4])
    policy = Cost(slot_value=100.0, call_cost=5.0, call_effect=0.5)  # flag where p > 0.1
    assert policy.flags(p, np.zeros(4), np.arange(4), 0.5).tolist() == [0, 0, 1, 1]


def test_cost_policy_net_benefit_sums_p_e_v_minus_c_over_flagged():
    p = np.array([0.05, 0.1, 0.2, 0.4])
    policy = Cost(slot_value=100.0, call_cost=5.0, call_effect=0.5)
    flagged = policy.flags(p, np.zeros(4), np.arange(4), 0.5)
    assert policy.net_benefit(p, flagged) == pytest.approx((10 - 5) + (20 - 5))


def test_max_f1_flags_at_the_threshold():
    assert MaxF1().flags(np.array([0.1, 0.3, 0.5]), np.zeros(3), np.arange(3), 0.3).tolist() == [0, 1, 1]


def test_no_policy_flag_means_max_f1():
    assert make_policy() == MaxF1()


@pytest.mark.parametrize("kwargs, message", [
    ({"calls_per_day": -1}, "--calls-per-day: -1 is negative"),
    ({"call_share": 0.0}, "--call-share: 0.0 is outside (0, 1]"),
    ({"call_share": 1.5}, "--call-share: 1.5 is outside (0, 1]"),
    ({"slot_value": 100.0, "call_cost": 5.0}, "missing --call-effect"),
    ({"call_effect": 0.3}, "missing --slot-value, --call-cost"),
    ({"slot_value": 100.0, "call_cost": -5.0, "call_effect": 0.3}, "--call-cost: -5.0 must be"),
    ({"slot_value": 100.0, "call_cost": 5.0, "call_effect": 1.2}, "--call-effect: 1.2 is outside [0, 1]"),
    ({"calls_per_day": 5, "call_share": 0.1}, "choose one of --calls-per-day and --call-share"),
    ({"calls_per_day": 5, "slot_value": 1.0, "call_cost": 1.0, "call_effect": 0.1}, "choose one policy"),
])
def test_bad_policy_values_are_user_errors(kwargs, message):
    with pytest.raises(NoshowError) as error:
        make_policy(**kwargs)
    assert message in str(error.value)
