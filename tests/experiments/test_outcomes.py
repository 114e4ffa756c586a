"""Patient-reported outcomes: validation and change summaries."""

from __future__ import annotations

import math

import pytest

from adaptive.errors import ConfigError
from experiments.outcomes import Outcomes, parse_phq9, summarise_outcomes


def test_change_and_percent_change() -> None:
    before = Outcomes(mood=6, pain=4, phq9_items=(2, 2, 1, 2, 1, 1, 2, 1, 0))
    after = Outcomes(mood=3, pain=4, phq9_items=(1, 1, 1, 1, 0, 1, 1, 0, 0))
    changes = {c.measure: c for c in summarise_outcomes(before, after)}
    assert changes["mood"].change == -3 and changes["mood"].percent_change == pytest.approx(-50.0)
    assert changes["pain"].change == 0
    assert before.phq9 == 12 and after.phq9 == 6
    assert changes["phq9"].percent_change == pytest.approx(-50.0)


def test_only_measures_answered_twice_are_summarised() -> None:
    changes = summarise_outcomes(Outcomes(mood=0), Outcomes(mood=2, pain=1))
    assert [c.measure for c in changes] == ["mood"]
    assert math.isnan(changes[0].percent_change)  # relative to 0 is undefined


@pytest.mark.parametrize(("kw", "name"), [({"mood": 11}, "mood"), ({"pain": -1}, "pain"), ({"mood": "x"}, "mood")])
def test_out_of_range_scores_name_the_measure(kw: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'.*0 to 10"):
        Outcomes(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1,2,3", "1,2,3,4,0,0,0,0,0", "a,b,c,d,e,f,g,h,i", "1,2,0,3,1,0,2,1,0,1"])
def test_phq9_parsing_rejects_bad_items(bad: str) -> None:
    with pytest.raises(ConfigError, match="nine item scores"):
        parse_phq9(bad)


def test_round_trip_through_plain_data() -> None:
    o = Outcomes(mood=5, pain=None, phq9_items=parse_phq9("1,2,0,3,1,0,2,1,0"))
    d = o.to_dict()
    assert d["phq9"] == 10
    assert Outcomes.from_dict(d) == o
