"""Writes examples/lenet.json: 160 synthetic 8x8 images of four shapes, deterministically.

    python examples/lenet_data.py

Classes: 0 a horizontal bar, 1 a vertical bar, 2 a diagonal, 3 a hollow square;
each at a random place and brightness, on noise (seeded, so the file is the same
on every run). Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIZE, COUNT, CLASSES = 8, 160, 4


def shape_image(kind: int, rng) -> np.ndarray:
    img = np.zeros((SIZE, SIZE))
    r, c = rng.integers(1, SIZE - 4, 2)
    length = int(rng.integers(4, 6))
    if kind == 0:
        img[r + 1, c:c + length] = 1.0
    elif kind == 1:
        img[r:r + length, c + 1] = 1.0
    elif kind == 2:
        for k in range(length - 1):
            img[r + k, c + k] = 1.0
    else:
        img[r:r + 4, c] = img[r:r + 4, c + 3] = img[r, c:c + 4] = img[r + 3, c:c + 4] = 1.0
    return img * rng.uniform(0.7, 1.0) + rng.normal(0.0, 0.1, (SIZE, SIZE))


def make(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(COUNT) % CLASSES
    rng.shuffle(labels)
    images = np.stack([shape_image(int(k), rng) for k in labels])[:, None]
    return np.round(images, 3), labels


if __name__ == "__main__":
    x, labels = make()
    out = Path(__file__).with_name("lenet.json")
    out.write_text(json.dumps({"x": x.tolist(), "labels": labels.tolist()}, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({x.shape[0]} images of {SIZE}x{SIZE}, {CLASSES} classes)")
