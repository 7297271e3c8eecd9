"""A time bound on every example; known bugs counted; in a campaign, failures collected instead of raised."""
from __future__ import annotations

import signal
import traceback

from hypothesis.errors import UnsatisfiedAssumption

from fuzz.stats import CAMPAIGN, STATS

# ---- known bugs ---------------------------------------------------------------------------------
#
# Bugs found by this file in code owned elsewhere, each with a strict xfail in
# tests/test_hostile.py. The fuzzer counts them (and reports the counts)
# rather than stopping at them, so that a campaign still finds the others;
# once fixed, a label simply stops being counted.

def _in_frames(err, name) -> bool:
    return any(fr.name == name for fr in traceback.extract_tb(err.__traceback__))


KNOWN_BUGS: dict = {
    # None open. Fixed since they were found here (tests/test_hostile.py keeps a regression test for
    # each): autodiff renaming a cotangent another list still held, GraphBuilder.bind renaming a def's
    # literal argument, the losses' reverse-mode rules needing every size at build time, render/train
    # running plans without locating NumPy's refusals (an empty axis), reverse-mode rules taking len()
    # of unknown shapes, and reshape/broadcast_to without their shape argument.
}


# The same, seen from the command line (an "internal error" line on stderr).
KNOWN_CLI_BUGS: dict = {
    # None open. render's blocks looking a def call's block node up in the graph (KeyError 'call:f#1',
    # exit 3) is fixed; tests/test_hostile.py keeps its regression test.
}


def known_cli_bug(argv, err) -> str | None:
    if "internal error" not in err:
        return None
    for label, test in KNOWN_CLI_BUGS.items():
        if test(argv, err):
            return label
    return None


def known_bug(err) -> str | None:
    for label, test in KNOWN_BUGS.items():
        if test(err):
            return label
    return None


HYPOTHESIS_CONTROL = (UnsatisfiedAssumption,)  # assume(False): not a failure


class Hang(Exception):
    """An example ran longer than HANG_SECONDS."""


HANG_SECONDS = 120  # per example, on a loaded 2-core machine; a typical one takes a tenth of a second


def _on_alarm(signum, frame):
    raise Hang(f"an example ran longer than {HANG_SECONDS} s")


def guarded(prop, *args):
    """Run a property under a time bound; a known bug is counted instead of failing the example.

    In a campaign a failure is recorded with its example and the run goes on, so that one run
    finds every bug rather than the first (hypothesis stops generating at a failure to shrink it).
    """
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        prop(*args)
    except Exception as err:
        label = known_bug(err)
        if label is not None:
            STATS["known_bug:" + label] += 1
        elif CAMPAIGN["collect"] and not isinstance(err, HYPOTHESIS_CONTROL):
            STATS["hangs" if isinstance(err, Hang) else "failures"] += 1
            CAMPAIGN["failures"].append(f"{type(err).__name__}: {err}\n{args!r}\n"
                                        + "".join(traceback.format_exception(err)[-6:]))
        else:
            raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
