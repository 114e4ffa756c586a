"""Patient-reported outcomes before and after a session: mood, pain and the PHQ-9.

Mood and pain are single 0 to 10 ratings, as the VA's VRKet programme collected them
(mood: 0 no depression, 10 worst ever; pain: 0 none, 10 worst imaginable). The PHQ-9 is the
nine-item depression questionnaire, each item scored 0 to 3, total 0 to 27.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from adaptive.errors import ConfigError

__all__ = [
    "PHQ9_ITEMS",
    "OutcomeChange",
    "Outcomes",
    "parse_phq9",
    "summarise_outcomes",
]

PHQ9_ITEMS: tuple[str, ...] = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed, or the opposite: being "
    "so fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead, or of hurting yourself in some way",
)

#: What each measure is, its range, and the direction that means better.
SCALES: dict[str, tuple[int, int, str]] = {
    "mood": (0, 10, "0 = no depression, 10 = worst ever"),
    "pain": (0, 10, "0 = no pain, 10 = worst pain imaginable"),
    "phq9": (0, 27, "sum of nine items scored 0-3"),
}


def _check_score(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    low, high, meaning = SCALES[name]
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and low <= v <= high):
        raise ConfigError(
            f"Invalid value for {name!r}: expected a number from {low} to {high} ({meaning}), got {value!r}."
        )
    return v


def parse_phq9(items: str | Sequence[int]) -> tuple[int, ...]:
    """Parse nine PHQ-9 item scores, e.g. ``"1,2,0,3,1,0,2,1,0"``.

    Raises
    ------
    ConfigError
        If there are not exactly nine integers from 0 to 3.
    """
    raw = [s.strip() for s in items.split(",")] if isinstance(items, str) else list(items)
    try:
        scores = tuple(int(s) for s in raw)
    except (TypeError, ValueError):
        scores = ()
    if len(scores) != 9 or any(s not in (0, 1, 2, 3) for s in scores) or len(scores) != len(raw):
        raise ConfigError(
            f"Invalid value for 'phq9': expected nine item scores from 0 to 3 separated by commas "
            f"(e.g. 1,2,0,3,1,0,2,1,0), got {items!r}."
        )
    return scores


@dataclass(frozen=True, slots=True)
class Outcomes:
    """One set of patient-reported outcomes (all optional: unanswered is ``None``).

    Parameters
    ----------
    mood : float or None
        0 (no depression) to 10 (worst ever).
    pain : float or None
        0 (no pain) to 10 (worst imaginable).
    phq9_items : tuple of int or None
        The nine PHQ-9 item scores, 0 to 3 each.
    """

    mood: float | None = None
    pain: float | None = None
    phq9_items: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mood", _check_score("mood", self.mood))
        object.__setattr__(self, "pain", _check_score("pain", self.pain))
        if self.phq9_items is not None:
            object.__setattr__(self, "phq9_items", parse_phq9(self.phq9_items))

    @property
    def phq9(self) -> int | None:
        """PHQ-9 total (0 to 27), or ``None`` when not asked."""
        return None if self.phq9_items is None else sum(self.phq9_items)

    def to_dict(self) -> dict[str, object]:
        """Plain-data form for the session file."""
        d = asdict(self)
        d["phq9"] = self.phq9
        d["phq9_items"] = None if self.phq9_items is None else list(self.phq9_items)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Outcomes:
        """Inverse of :meth:`to_dict`."""
        items = d.get("phq9_items")
        return cls(
            mood=d.get("mood"),  # type: ignore[arg-type]
            pain=d.get("pain"),  # type: ignore[arg-type]
            phq9_items=None if items is None else tuple(items),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class OutcomeChange:
    """Before, after, change (after - before) and percent change of one measure.

    A negative change is an improvement for all three measures. The percent change is
    relative to the value before and NaN when that was 0.
    """

    measure: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """After minus before."""
        return self.after - self.before

    @property
    def percent_change(self) -> float:
        """Change as a percentage of the value before (NaN when it was 0)."""
        return math.nan if self.before == 0 else 100.0 * self.change / self.before


def summarise_outcomes(before: Outcomes, after: Outcomes) -> list[OutcomeChange]:
    """Return the change of every measure answered both before and after."""
    out = []
    for name, b, a in (
        ("mood", before.mood, after.mood),
        ("pain", before.pain, after.pain),
        ("phq9", before.phq9, after.phq9),
    ):
        if b is not None and a is not None:
            out.append(OutcomeChange(name, float(b), float(a)))
    return out
