"""What graphdsl draws from numpy.random.default_rng(seed), in pure Python, bit for bit.

SeedSequence(seed) (pool of 4 words) seeds PCG64 (128-bit LCG, XSL-RR output) from
generate_state(4, uint64); doubles are (u64 >> 11) * 2**-53; uniform is low + (high - low) * u;
the standard normal is NumPy's ziggurat (random_standard_normal in numpy's distributions.c)
with its tables (numpy_random_tables.py). The JAX exporter copies this module's source into
an exported file, which may import only jax and the standard library: so this module imports
math and the tables alone, and its names start with `_np` or `np_` (no clash with the file's).
"""
import math

from .numpy_random_tables import _ZIG_FI, _ZIG_INV_R, _ZIG_KI, _ZIG_R, _ZIG_WI  # the exporter inlines these

_NP_MASK32 = 0xFFFFFFFF
_NP_MASK64 = 0xFFFFFFFFFFFFFFFF
_NP_MASK128 = (1 << 128) - 1
_NP_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341


def _np_seed_words(seed):
    """SeedSequence's entropy: a non-negative int as 32-bit words, least significant first."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a seed is a non-negative int, not {seed!r}")
    words = [seed & _NP_MASK32]
    seed >>= 32
    while seed:
        words.append(seed & _NP_MASK32)
        seed >>= 32
    return words


def _np_seed_pool(entropy):
    """SeedSequence.mix_entropy with pool size 4 (numpy/random/bit_generator.pyx)."""
    hash_const = [0x43B0D7E5]

    def hashmix(value):
        value ^= hash_const[0]
        hash_const[0] = (hash_const[0] * 0x931E8875) & _NP_MASK32
        value = (value * hash_const[0]) & _NP_MASK32
        return value ^ (value >> 16)

    def mix(x, y):
        result = (0xCA01F9DD * x - 0x4973F715 * y) & _NP_MASK32
        return result ^ (result >> 16)

    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(4)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for word in entropy[4:]:
        for i_dst in range(4):
            pool[i_dst] = mix(pool[i_dst], hashmix(word))
    return pool


def _np_generate_state(pool, n_words64):
    """SeedSequence.generate_state(n, uint64): 2n 32-bit words, paired little-endian."""
    hash_const, words = 0x8B51F9DD, []
    for i in range(2 * n_words64):
        value = pool[i % len(pool)] ^ hash_const
        hash_const = (hash_const * 0x58F38DED) & _NP_MASK32
        value = (value * hash_const) & _NP_MASK32
        words.append(value ^ (value >> 16))
    return [words[2 * i] | (words[2 * i + 1] << 32) for i in range(n_words64)]


class NpGenerator:
    """numpy.random.default_rng(seed): PCG64 and the draws graphdsl's initialisers use."""

    def __init__(self, seed):
        s0, s1, i0, i1 = _np_generate_state(_np_seed_pool(_np_seed_words(seed)), 4)
        self.inc = (((i0 << 64) | i1) << 1 | 1) & _NP_MASK128
        self.state = 0
        self._step()
        self.state = (self.state + ((s0 << 64) | s1)) & _NP_MASK128
        self._step()

    def _step(self):
        self.state = (self.state * _NP_PCG_MULT + self.inc) & _NP_MASK128

    def next_uint64(self):
        self._step()
        high, low = self.state >> 64, self.state & _NP_MASK64
        value, rot = high ^ low, high >> 58
        return ((value >> rot) | (value << ((-rot) & 63))) & _NP_MASK64

    def next_double(self):
        return (self.next_uint64() >> 11) * (1.0 / 9007199254740992.0)

    def standard_normal_one(self):
        while True:
            r = self.next_uint64()
            idx = r & 0xFF
            r >>= 8
            rabs = (r >> 1) & 0x000FFFFFFFFFFFFF
            x = rabs * _ZIG_WI[idx]
            if r & 0x1:
                x = -x
            if rabs < _ZIG_KI[idx]:
                return x  # 99.3% of draws end here
            if idx == 0:  # the tail beyond r
                while True:
                    xx = -_ZIG_INV_R * math.log1p(-self.next_double())
                    yy = -math.log1p(-self.next_double())
                    if yy + yy > xx * xx:
                        return -(_ZIG_R + xx) if (rabs >> 8) & 0x1 else _ZIG_R + xx
            elif (_ZIG_FI[idx - 1] - _ZIG_FI[idx]) * self.next_double() + _ZIG_FI[idx] < math.exp(-0.5 * x * x):
                return x  # a wedge

    def standard_normal(self, n):
        return [self.standard_normal_one() for _ in range(n)]

    def normal(self, loc, scale, n):
        if scale < 0:
            raise ValueError("scale < 0")
        return [loc + scale * self.standard_normal_one() for _ in range(n)]

    def uniform(self, low, high, n):
        span = high - low
        if not math.isfinite(span):
            raise OverflowError("high - low range exceeds valid bounds")
        if span < 0:
            raise ValueError("high - low < 0")
        return [low + span * self.next_double() for _ in range(n)]
