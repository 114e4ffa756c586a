"""Records passed between stages validate their input and stay immutable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptive.types import UNITS, Chunk, Estimate, Metric, SignalKind


def _chunk(**kw: object) -> Chunk:
    args: dict[str, object] = dict(
        kind=SignalKind.EEG,
        data=np.zeros((2, 3)),
        times=np.array([0.0, 0.1, 0.2]),
        sfreq=10.0,
        ch_names=("a", "b"),
    )
    args.update(kw)
    return Chunk(**args)  # type: ignore[arg-type]


def test_chunk_is_read_only_copy() -> None:
    src = np.ones((2, 3))
    c = _chunk(data=src)
    src[0, 0] = 5.0  # the chunk owns a copy
    assert c.data[0, 0] == 1.0
    with pytest.raises(ValueError):
        c.data[0, 0] = 2.0
    with pytest.raises(ValueError):
        c.times[0] = 2.0
    assert c.n_channels == 2 and c.n_times == 3 and c.unit == UNITS[SignalKind.EEG] == "uV"


def test_chunk_accepts_string_kind() -> None:
    assert _chunk(kind="ppg").kind is SignalKind.PPG


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"times": np.array([0.0, 0.2, 0.1])}, "strictly increasing"),
        ({"times": np.array([0.0, 0.1])}, "timestamps"),
        ({"ch_names": ("a",)}, "ch_names"),
        ({"sfreq": 0.0}, "sfreq"),
        ({"data": np.zeros(3)}, "2-D"),
        ({"times": np.array([0.0, np.nan, 0.2])}, "times"),
    ],
)
def test_chunk_rejects_bad_calls(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _chunk(**kw)


def test_chunk_keeps_nan_data() -> None:
    """Missing samples are data, not a wrong call: NaN is allowed in data."""
    c = _chunk(data=np.array([[np.nan, 1, 2], [3, 4, 5]]))
    assert math.isnan(c.data[0, 0])


def test_estimate_validates_quality() -> None:
    e = Estimate(Metric.HR_BPM, 60, 1, 3)
    assert e.value == 60.0 and e.metric is Metric.HR_BPM
    assert Estimate("hr_bpm", math.nan, math.nan, 0.0).quality == 0.0
    with pytest.raises(ValueError, match="quality"):
        Estimate(Metric.HR_BPM, 60.0, 1.5, 0.0)


def test_metric_names_carry_units() -> None:
    assert Metric.RESP_RATE_BRPM.value.endswith("_brpm")
    assert Metric.RMSSD_MS.value.endswith("_ms")


def test_trusted_constructors_match_the_validating_ones() -> None:
    c = _chunk()
    fast = Chunk._trusted(c.kind, c.data, c.times, c.sfreq, c.ch_names)
    assert (fast.kind, fast.sfreq, fast.ch_names, fast.n_times) == (c.kind, c.sfreq, c.ch_names, c.n_times)
    assert fast.data is c.data and not fast.data.flags.writeable
    e = Estimate._trusted(Metric.HR_BPM, np.float64(60.0), 0.5, np.float64(1.0))
    assert e == Estimate(Metric.HR_BPM, 60.0, 0.5, 1.0)
    assert type(e.value) is float and type(e.time) is float
    # out-of-range or NaN quality takes the validating path: raises, or maps NaN to 0
    assert Estimate._trusted(Metric.HR_BPM, 60.0, math.nan, 1.0).quality == 0.0
    with pytest.raises(ValueError, match="quality"):
        Estimate._trusted(Metric.HR_BPM, 60.0, 1.5, 1.0)
