"""Compiled kernels for the per-window analyses (numba), with the project's settings.

The streaming estimators analyse overlapping windows every hop.  Done with numpy alone, one
hop is dozens of small array calls, each costing a few microseconds of overhead; a compiled
loop over the same samples costs about as much as one of them.  The kernels keep the
arithmetic of the numpy form they replace (same operations in the same order where the
order matters), so estimates agree with it to rounding.

Every kernel is compiled ahead of its first call, for the explicit signatures it is declared
with, and cached on disk next to its module (``__pycache__``): the first import on a new
installation compiles (seconds, once), later imports load the cached machine code
(milliseconds).  A session therefore never compiles in the middle of a tick, and a call
with an argument of another type raises ``TypeError`` instead of compiling at run time.
Arrays are declared with any layout (``float64[:]``), so C-contiguous arrays and views both
match.

Settings:

* ``cache=True``: compiled once per installation.
* ``error_model="numpy"``: division by zero gives inf or NaN as in numpy, never an exception
  (bad data lowers quality, it must not raise).
* ``nogil=True``: a kernel does not hold the GIL, so the patient window's drawing thread and
  the audio callback keep running while the DSP computes.
* no ``fastmath``: IEEE arithmetic, NaN checks keep their meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

__all__ = ["kernel", "numba"]

F = TypeVar("F", bound=Callable[..., Any])


def kernel(*signatures: str) -> Callable[[F], F]:
    """Compile a function for the given numba signatures (see the module notes).

    Parameters
    ----------
    *signatures : str
        One or more numba signatures, e.g. ``"float64(float64[:], int64)"``.

    Returns
    -------
    decorator : callable
        Decorator returning the compiled dispatcher (called like the function).

    Raises
    ------
    ValueError
        If no signature is given (kernels are never compiled lazily).
    """
    if not signatures:
        raise ValueError(
            "Invalid value for 'signatures': expected at least one numba signature string, got none. "
            "Declare the argument types, e.g. @kernel('float64(float64[:])')."
        )

    def decorate(fn: F) -> F:
        compiled = numba.njit(list(signatures), cache=True, nogil=True, error_model="numpy")(fn)
        return compiled  # type: ignore[no-any-return]

    return decorate
