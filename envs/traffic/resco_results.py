"""RESCO's recorded results (Ault & Sharon, NeurIPS 2021 Datasets and Benchmarks), to put beside
ctrlgym's in the traffic benchmark report.

Each value is the mean delay (s per vehicle, RESCO's tripinfo formula: ctrlgym's ``delay_resco``)
over the last 10 episodes of a run, from RESCO's own result file
``resco_benchmark/utils/avg_timeLoss.py`` (github.com/Pi-Star-Lab/RESCO). Controllers ran 30 or
100 episodes; learned agents 100 (IDQN, MPLight) or 1,400 (IPPO, FMA2C). RESCO records no
fixed-time run on grid4x4 and arterial4x4.
"""

from __future__ import annotations

from ctrlgym.published import PublishedResults

__all__ = ["RESCO_RESULTS"]

RESCO_RESULTS = PublishedResults(
    source="RESCO (Ault & Sharon 2021), resco_benchmark/utils/avg_timeLoss.py: mean of the last 10 episodes",
    metric="delay_resco",
    higher_is_better=False,
    values={
        "resco:grid4x4": {
            "MAXWAVE": 34.2,
            "MAXPRESSURE": 52.3,
            "IDQN": 34.1,
            "MPLight": 47.9,
            "IPPO": 45.9,
            "FMA2C": 106.5,
        },
        "resco:arterial4x4": {
            "MAXWAVE": 911.6,
            "MAXPRESSURE": 988.1,
            "IDQN": 1316.2,
            "MPLight": 989.6,
            "IPPO": 1457.6,
            "FMA2C": 773.3,
        },
        "resco:cologne1": {
            "FIXED": 56.5,
            "MAXWAVE": 27.6,
            "MAXPRESSURE": 135.5,
            "IDQN": 28.9,
            "MPLight": 53.2,
            "IPPO": 210.8,
            "FMA2C": 32.3,
        },
        "resco:cologne3": {
            "FIXED": 39.8,
            "MAXWAVE": 179.2,
            "MAXPRESSURE": 114.4,
            "IDQN": 95.5,
            "MPLight": 713.9,
            "IPPO": 123.3,
            "FMA2C": 106.3,
        },
        "resco:cologne8": {
            "FIXED": 65.1,
            "MAXWAVE": 21.9,
            "MAXPRESSURE": 39.6,
            "IDQN": 22.3,
            "MPLight": 252.4,
            "IPPO": 22.5,
            "FMA2C": 37.5,
        },
        "resco:ingolstadt1": {
            "FIXED": 39.5,
            "MAXWAVE": 28.6,
            "MAXPRESSURE": 23.5,
            "IDQN": 22.2,
            "MPLightFULL": 31.2,
            "IPPO": 22.7,
            "FMA2C": 31.8,
        },
        "resco:ingolstadt7": {
            "FIXED": 91.5,
            "MAXWAVE": 79.2,
            "MAXPRESSURE": 46.4,
            "IDQN": 35.6,
            "MPLight": 83.1,
            "IPPO": 32.5,
            "FMA2C": 56.3,
        },
        "resco:ingolstadt21": {
            "FIXED": 137.6,
            "MAXWAVE": 69.1,
            "MAXPRESSURE": 112.8,
            "IDQN": 86.2,
            "MPLight": 377.3,
            "IPPO": 397.2,
            "FMA2C": 115.9,
        },
    },
    learned=frozenset({"IDQN", "MPLight", "MPLightFULL", "IPPO", "FMA2C"}),
    # the classic controllers both ran, for the ranking agreement
    names={"fixed_time": "FIXED", "resco_max_wave": "MAXWAVE", "resco_max_pressure": "MAXPRESSURE"},
)
