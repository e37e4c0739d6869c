"""Bookkeeping of the fuzz suites (test_fuzz_*.py and test_data_fuzz.py): every case is classified as

* ``accepted``: the input was read (or served) without error,
* ``clear``: refused with one of the package's own errors (a one-line message),
* ``traceback``: any other exception (a bug: the test fails),
* ``hang``: no answer within the time bound (a bug: the test fails).

The counts per suite are printed at the end of the pytest run (see conftest.py), e.g.::

    OMP_NUM_THREADS=1 python -m pytest -q -p no:randomly tests/test_fuzz_*.py tests/test_data_fuzz.py

Every suite runs a fixed number of derandomised hypothesis examples (``FUZZ``), so the counts and the
run time are the same on every run.
"""

from __future__ import annotations

import signal
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import providers as _providers
from hypothesis.internal.floats import float_to_int
from sortedcontainers import SortedSet

OUTCOMES = ("accepted", "clear", "traceback", "hang")
COUNTS: dict[str, Counter] = defaultdict(Counter)
EXAMPLES: dict[str, list[str]] = defaultdict(list)  # first tracebacks and hangs, for the summary

# Hypothesis (>= 6.1xx) also draws literal constants found in the modules loaded so far, so the cases
# would depend on which other tests ran first; without those constants a derandomised run generates the
# same cases every time. (A private hook: if Hypothesis renames it, only this determinism is lost.)
if hasattr(_providers, "_get_local_constants") and hasattr(_providers, "Constants"):
    _NO_LOCAL_CONSTANTS = _providers.Constants(
        integers=SortedSet(), floats=SortedSet(key=float_to_int), bytes=SortedSet(), strings=SortedSet()
    )
    _providers._get_local_constants = lambda: _NO_LOCAL_CONSTANTS

#: Derandomised (seeded), bounded, no example database: the same cases on every run.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Hang(Exception):
    """The time bound of one case passed."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``Hang`` in the main thread after ``seconds`` (SIGALRM)."""

    def alarm(_signum: int, _frame: Any) -> None:
        raise Hang(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def classify(
    suite: str,
    case: Callable[[], object],
    clear: tuple[type[BaseException], ...],
    seconds: float = 10.0,
    check_clear: Callable[[BaseException], bool] = lambda _error: True,
) -> str:
    """Run ``case`` and count its outcome under ``suite``; a traceback or hang fails the calling test.

    ``clear`` lists the exception types that count as clear errors, provided ``check_clear`` accepts
    the exception (e.g. that its message names the file) and its message is one line.
    """
    try:
        with time_limit(seconds):
            case()
        outcome, detail = "accepted", ""
    except Hang as error:
        outcome, detail = "hang", str(error)
    except clear as error:
        one_line = "\n" not in str(error).strip()
        outcome = "clear" if one_line and check_clear(error) else "traceback"
        detail = f"{type(error).__name__}: {error}"
    except Exception as error:
        outcome, detail = "traceback", f"{type(error).__name__}: {error}"
    COUNTS[suite][outcome] += 1
    if outcome in ("traceback", "hang") and len(EXAMPLES[suite]) < 3:
        EXAMPLES[suite].append(detail[:300])
    assert outcome not in ("traceback", "hang"), f"{suite}: {outcome}: {detail}"
    return outcome


def summary_lines() -> list[str]:
    """One line per suite: cases and the count of each outcome."""
    lines = []
    for suite in sorted(COUNTS):
        counts = COUNTS[suite]
        cases = sum(counts.values())
        lines.append(
            f"{suite:28s} cases {cases:5d}   " + "   ".join(f"{name} {counts[name]:5d}" for name in OUTCOMES)
        )
        lines += [f"    {example}" for example in EXAMPLES[suite]]
    if COUNTS:
        total = sum((COUNTS[suite] for suite in COUNTS), Counter())
        lines.append(
            f"{'total':28s} cases {sum(total.values()):5d}   "
            + "   ".join(f"{name} {total[name]:5d}" for name in OUTCOMES)
        )
    return lines
