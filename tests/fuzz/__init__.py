"""Test support for the program fuzzer (tests/test_fuzz_programs.py; docs/fuzzing.md).

program.py    what a generated program is (text, values, features)
tables.py     the elementwise, reduction and grad forms the generator formats
core.py       GenCore: choices, axes and shapes, leaves and declarations, the expression dispatch, the program
forms_*.py    the expression forms by family (mixins of Gen)
gen.py        Gen, and the hypothesis strategy `programs`
loops.py      loop and multi-return programs, written rolled and hand-unrolled from one representation; hostile ones
stats.py      the counters a run fills (and a campaign reports)
guard.py      the time bound, known bugs, collecting failures in a campaign
checks.py     load, evaluate, compiled program against the reference schedule
oracle_torch.py  PyTorch replay of the plan
oracle_fd.py  finite differences, kink distances
cli.py        the command line in process, token and byte mutants
"""
