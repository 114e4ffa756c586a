"""Packaging tripwires: our four top-level names belong to calmloop alone."""

from __future__ import annotations

import importlib.metadata as md

import pytest

OURS = ("adaptive", "sensors", "feedback", "experiments")


@pytest.mark.parametrize("name", OURS)
def test_no_other_distribution_claims_our_packages(name: str) -> None:
    """pip lets two distributions write the same files; fail loudly if one did (see README)."""
    owners = md.packages_distributions().get(name, [])
    others = sorted(set(owners) - {"calmloop"})
    assert not others, (
        f"Installed distribution(s) {others} also provide the top-level package {name!r}; "
        "install calmloop into its own virtual environment (make test / make demo do)."
    )


def test_console_script_declared() -> None:
    eps = {ep.name: ep.value for ep in md.entry_points(group="console_scripts")}
    assert eps.get("calmloop") == "experiments.cli:main"
