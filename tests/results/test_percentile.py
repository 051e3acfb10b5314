"""A run's latency percentiles are computed without numpy, and must equal numpy's."""

from __future__ import annotations

import random

import numpy as np
import pytest

from evalcore.results.summary import percentile


@pytest.mark.parametrize("q", [0, 5, 37.5, 50, 95, 99, 100])
def test_percentile_is_numpys_linear_percentile_bit_for_bit(q: float) -> None:
    rng = random.Random(q)
    for _ in range(2000):
        values = [
            rng.choice([rng.random() * 1000, rng.lognormvariate(3, 1), float(rng.randint(1, 9))])
            for _ in range(rng.randint(1, 200))
        ]
        assert percentile(sorted(values), q) == float(np.percentile(values, q))
