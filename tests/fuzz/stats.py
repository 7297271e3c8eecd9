"""The counters a run fills and a campaign reports (mutated in place, never rebound)."""
from __future__ import annotations

from collections import Counter

STATS: Counter = Counter()
RECORD: dict = {}  # the largest errors seen: name -> value
OPS_SEEN: set = set()  # operators in the graphs checked
CALLED: set = set()  # names called in the programs checked
NONFINITE_IN_TORCH: list = []  # programs where PyTorch's value or gradient was not finite and graphdsl's was
TORCH_OPS_SEEN: set = set()  # operators replayed in PyTorch (the engine's internal ones too)
CAMPAIGN = {"collect": False, "failures": []}  # a campaign collects failures and goes on
