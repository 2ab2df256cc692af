"""Published results beside ctrlgym's: Kendall's τ and the benchmark report's section."""

from ctrlgym.experiment.reports.benchmark import PolicyResults, _published_blocks
from ctrlgym.published import PublishedResults, concordance, kendall_tau


def test_kendall_tau_counts_concordant_minus_discordant_pairs_over_the_policies_both_have():
    assert kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 5, "b": 6, "c": 7}) == 1.0
    assert kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 7, "b": 6, "c": 5}) == -1.0
    assert kendall_tau({"a": 1, "b": 2, "x": 0}, {"a": 1, "b": 2, "y": 0}) == 1.0  # x, y in one only: left out
    assert kendall_tau({"a": 1}, {"a": 1}) is None
    assert concordance({"a": 1, "b": 1, "c": 2}, {"a": 1, "b": 2, "c": 3}) == (2, 0)  # a tie is neither


PUBLISHED = PublishedResults(
    source="a paper",
    metric="delay_resco",
    higher_is_better=False,
    values={"map": {"FIXED": 56.0, "MAXWAVE": 27.0, "MAXPRESSURE": 135.0, "IDQN": 29.0}},
    learned=frozenset({"IDQN"}),
    names={"fixed_time": "FIXED", "resco_max_wave": "MAXWAVE", "resco_max_pressure": "MAXPRESSURE"},
)


def results(label: str, kind: str, values: list[float]) -> PolicyResults:
    return PolicyResults(label, kind, values={"delay_resco": {str(s): v for s, v in enumerate(values)}})


def test_the_report_puts_the_published_best_beside_ours_and_the_ranking_agreement():
    assert PUBLISHED.best("map", learned=True) == ("IDQN", 29.0)
    assert PUBLISHED.best("map", learned=False) == ("MAXWAVE", 27.0)
    table = {
        "map": {
            "fixed_time": results("fixed_time", "baseline", [50.0, 52.0, 51.0]),
            "resco_max_wave": results("resco_max_wave", "baseline", [30.0, 31.0, 29.0]),
            "resco_max_pressure": results("resco_max_pressure", "baseline", [40.0, 41.0, 39.0]),  # 3rd there, 2nd here
            "nash_dqn": results("nash_dqn", "agent", [25.0, 26.0, 24.0]),
        },
        "elsewhere": {"nash_dqn": results("nash_dqn", "agent", [1.0, 2.0, 3.0])},  # not published: no row
    }
    blocks = _published_blocks(PUBLISHED, table, ["map", "elsewhere"])
    (_, header, rows) = blocks[-1]
    assert header[0] == "task" and len(rows) == 1
    task, learned, controller, ours, tau = rows[0]
    assert (learned, controller) == ("IDQN 29.0", "MAXWAVE 27.0")
    assert ours == "nash_dqn 25.0"
    # pairs: (FIXED, MAXWAVE) agree, (MAXWAVE, MAXPRESSURE) agree, (FIXED, MAXPRESSURE) disagree: τ = 1/3
    assert tau.startswith("+0.33")
    assert "2 of 3 pairs" in blocks[1][1]


def test_no_published_task_no_section():
    assert _published_blocks(PUBLISHED, {"other": {"a": results("a", "baseline", [1.0])}}, ["other"]) == []


def test_the_ranking_agreement_between_two_envs_has_a_bootstrap_ci():
    from ctrlgym.experiment.reports.benchmark import _agreement_blocks

    def policies(values):
        return {
            name: PolicyResults(name, "baseline", values={"delay": dict(enumerate(v))}) for name, v in values.items()
        }

    sumo = {"t": policies({"a": [1.0, 2.0, 3.0], "b": [5.0, 6.0, 7.0], "c": [9.0, 10.0, 11.0]})}
    twin = {"t": policies({"a": [1.0, 1.1, 0.9], "b": [2.0, 2.1, 1.9], "c": [0.5, 0.6, 0.4], "d": [3.0, 3.0, 3.0]})}
    blocks = _agreement_blocks("SUMO", sumo, "twin", twin, "delay", higher=False, reps=200)
    (_, header, rows) = blocks[-1]
    task, tau, mine, theirs = rows[0]
    # a < b < c on SUMO, c < a < b on the twin: (a, b) agree, (a, c) and (b, c) do not: τ = -1/3
    assert tau.startswith("-0.33") and mine == "a, b, c" and theirs == "c, a, b"
    low, high = (float(x) for x in tau.split("[")[1].rstrip("]").split(","))
    assert low <= -0.33 <= high  # the CI as printed, to 2 decimals
    assert _agreement_blocks("SUMO", sumo, "twin", {"u": twin["t"]}, "delay", higher=False) == []  # no common task
