"""graphdsl/interop/pyrandom.py draws what numpy.random.default_rng(seed) draws, bit for bit."""
import numpy as np
import pytest

from graphdsl.interop.pyrandom import NpGenerator

SEEDS = (0, 1, 7, 12345, 2**32 + 5)


def same_bits(ours, numpy_values):
    return np.array_equal(np.array(ours, dtype=np.float64).view(np.uint64), np.asarray(numpy_values).view(np.uint64))


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_uniform_and_standard_normal_in_sequence_equal_numpy(seed):
    ours, theirs = NpGenerator(seed), np.random.default_rng(seed)
    for n in (1, 3, 17, 256):  # one generator: each draw continues where the last stopped
        assert same_bits(ours.normal(0.5, 2.0, n), theirs.normal(0.5, 2.0, n))
        assert same_bits(ours.uniform(-3.0, 0.25, n), theirs.uniform(-3.0, 0.25, n))
        assert same_bits(ours.standard_normal(n), theirs.standard_normal(n))
        assert same_bits(ours.normal(0.0, 0.1, n), theirs.normal(0.0, 0.1, n))


@pytest.mark.parametrize("seed", (0, 12345))
def test_a_long_run_of_normals_takes_the_tail_and_the_wedges_and_equals_numpy(seed):
    ours = NpGenerator(seed).standard_normal(100_000)
    theirs = np.random.default_rng(seed).standard_normal(100_000)
    assert same_bits(ours, theirs)
    # the ziggurat's rare paths were taken: draws beyond its base strip's edge r
    assert np.sum(np.abs(theirs) > 3.6541528853610088) > 0


def test_the_first_words_equal_numpys_pcg64():
    for seed in SEEDS:
        ours = NpGenerator(seed)
        theirs = np.random.PCG64(seed).random_raw(5)
        assert [ours.next_uint64() for _ in range(5)] == [int(v) for v in theirs]


def test_bad_arguments_are_refused_as_numpy_refuses_them():
    with pytest.raises(ValueError):
        NpGenerator(-1)
    with pytest.raises(ValueError):
        NpGenerator(0).normal(0.0, -1.0, 2)
    with pytest.raises(OverflowError):
        NpGenerator(0).uniform(-1e308, 1e308, 2)
    with pytest.raises(OverflowError):
        np.random.default_rng(0).uniform(-1e308, 1e308, 2)


def test_make_random_tables_writes_the_committed_module_from_a_header_in_numpys_form():
    """The script reads C arrays (ULL hex words, decimal doubles) and the two constants as numpy's header
    holds them; fed the committed tables in that form, it writes the committed module again."""
    from pathlib import Path

    from graphdsl.interop import make_random_tables, numpy_random_tables as tables

    def c_array(c_type, c_name, items):
        return f"static const {c_type} {c_name}[] = {{\n    " + ",\n    ".join(items) + "};\n"

    header = (c_array("uint64_t", "ki_double", [f"0x{v:016X}ULL" for v in tables._ZIG_KI])
              + c_array("double", "wi_double", [f"{v:.20e}" for v in tables._ZIG_WI])
              + c_array("double", "fi_double", [f"{v:.20e}" for v in tables._ZIG_FI])
              + c_array("float", "wi_float", ["1.0F"])
              + f"static const double ziggurat_nor_r = {tables._ZIG_R:.28f};\n"
              + f"static const double ziggurat_nor_inv_r =\n    {tables._ZIG_INV_R:.29f}; // 1.0 / ziggurat_nor_r;\n")
    assert make_random_tables.module_text(header) == Path(tables.__file__).read_text()
