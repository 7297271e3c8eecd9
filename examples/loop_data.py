"""Writes the data of the loop examples, deterministically (seeded; nothing is downloaded).

    python examples/loop_data.py

- char_gru.json: 48 windows of 13 characters of char_gru.txt, as class indices:
  `tokens[t, b]` is character t of window b and `targets[t, b]` the one after it.
  The vocabulary is the text's sorted characters (VOCAB below; the model's V).
- lstm.json: 32 sequences of 8 steps of 2 features; the target of a sequence is
  the mean of its first feature over the first four steps (the LSTM must remember
  them past four steps of noise).
- causal_attention.json: 6 tokens of width 4; the target of token i is the mean of
  tokens 0..i (what causal attention with equal weights would give).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXT = (HERE / "char_gru.txt").read_text(encoding="utf-8").replace("\n", " ").strip()
VOCAB = sorted(set(TEXT))
T_CHARS, WINDOWS = 12, 48


def char_windows(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.array([VOCAB.index(ch) for ch in TEXT])
    starts = rng.choice(len(ids) - T_CHARS - 1, size=WINDOWS, replace=False)
    windows = np.stack([ids[s:s + T_CHARS + 1] for s in sorted(starts)], axis=1)  # [T+1, B]
    return {"tokens": windows[:-1], "targets": windows[1:]}


def lstm_sequences(seed: int = 1):
    rng = np.random.default_rng(seed)
    xs = np.round(rng.normal(size=(8, 32, 2)), 3)  # [T, B, d]
    target = xs[:4, :, :1].mean(axis=0)  # [B, 1]
    return {"xs": xs, "target": np.round(target, 6)}


def attention_tokens(seed: int = 2):
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(6, 4)), 3)
    target = np.cumsum(X, axis=0) / np.arange(1, 7)[:, None]
    return {"X": X, "target": np.round(target, 6)}


def write(name: str, data: dict) -> None:
    text = json.dumps({k: np.asarray(v).tolist() for k, v in data.items()}, indent=1)
    (HERE / f"{name}.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    write("char_gru", char_windows())
    write("lstm", lstm_sequences())
    write("causal_attention", attention_tokens())
    print(f"vocabulary ({len(VOCAB)}): {''.join(VOCAB)!r}")
