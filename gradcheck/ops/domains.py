"""Input domains of the ops, used to sample test points inside each op's domain.

A domain is a name an op declares per positional argument; each maps to a sampler
``(rng, shape) -> ndarray``.  Kinky ops sample away from their kinks so that a
finite difference there measures the derivative, not the average of two slopes.
"""
from __future__ import annotations

import numpy as np


def _away_from_zero(rng, shape, low=0.2, high=2.0):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


SAMPLERS = {
    "real": lambda rng, shape: rng.standard_normal(shape),
    "positive": lambda rng, shape: rng.uniform(0.5, 2.0, size=shape),
    "nonzero": _away_from_zero,
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, size=shape),
    "probability": lambda rng, shape: rng.uniform(0.05, 0.95, size=shape),
    "sign": lambda rng, shape: rng.choice([-1.0, 1.0], size=shape),
    "off_integer": lambda rng, shape: rng.integers(-3, 3, size=shape) + rng.uniform(0.1, 0.9, size=shape),  # floor's jumps
    "mask": lambda rng, shape: rng.random(shape) < 0.5,  # 0/1 selection data (where's cond, attention masks)
}


def sample(domain: str, rng: np.random.Generator, shape) -> np.ndarray:
    return np.asarray(SAMPLERS[domain](rng, shape), dtype=np.float64)
