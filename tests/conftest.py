"""Shared fixtures: recorders of the largest errors against references, printed at the end."""
from __future__ import annotations

import pytest

from bits import same_bits


class ErrorRecord:
    """The largest error seen against a reference, and where."""

    def __init__(self, what: str):
        self.what = what
        self.worst, self.where, self.count = 0.0, None, 0

    def add(self, error: float, where: str):
        self.count += 1
        if error >= self.worst:
            self.worst, self.where = float(error), where


FD_RECORD = ErrorRecord("finite differences: largest |reverse mode - FD|")
FD_LARGE_RECORD = ErrorRecord("finite differences, inputs of size ~1e3 (FD rounding ~1e-7 expected): largest "
                              "|reverse mode - FD|")
TORCH_RECORD = ErrorRecord("PyTorch: largest relative error of values and gradients")


@pytest.fixture(scope="session")
def fd_record() -> ErrorRecord:
    return FD_RECORD


@pytest.fixture(scope="session")
def fd_large_record() -> ErrorRecord:
    return FD_LARGE_RECORD


@pytest.fixture(scope="session")
def torch_record() -> ErrorRecord:
    return TORCH_RECORD


def pytest_terminal_summary(terminalreporter):
    for record in (FD_RECORD, FD_LARGE_RECORD, TORCH_RECORD):
        if record.count:
            terminalreporter.write_line(f"{record.what} = {record.worst:.3e} over {record.count} "
                                        f"comparisons (at {record.where})")


@pytest.fixture(autouse=True)
def _first_calls_check_the_compiled_program_too(monkeypatch):
    """A plan's first `Model.eval`/`grad` call is answered from the reference schedule (plan.py).

    In the tests it also runs the compiled program, which must give the same bits: so every
    test that calls `grad` once against finite differences or PyTorch checks both paths.
    """
    from graphdsl.plan import Plan

    reference = Plan._run_reference_quiet

    def both(self, leaf_values):
        results = reference(self, leaf_values)
        compiled = self._run_compiled(leaf_values)
        assert len(compiled) == len(results)
        for k, (c, r) in enumerate(zip(compiled, results)):
            assert same_bits(c, r), f"compiled program differs from the reference schedule in result {k}"
        return results

    monkeypatch.setattr(Plan, "_run_reference_quiet", both)


@pytest.fixture(autouse=True)
def _shared_edge_dicts_stay_empty():
    """Edges share their key and data dicts (digraph.AT, NO_DATA), which must never be written in
    place: one write would change every edge of every graph. Checked after each test."""
    from graphdsl.digraph import AT, NO_DATA

    yield
    assert NO_DATA == {} and AT == ({0: {}}, {1: {}}), f"a shared edge dict was written: {AT}"
