"""Fitness shaping for evolution strategies: centered ranks, with ties sharing their rank.

Shaping replaces a population's raw objective values by their ranks spread over [-0.5, 0.5]
(Salimans et al. 2017): the gradient estimate then ignores the values' scale and outliers, and a
single huge value cannot swamp a step.
"""

from __future__ import annotations

from typing import Any

import numpy

__all__ = ["centered_rank"]


def centered_rank(values: Any) -> numpy.ndarray:
    """The ranks of ``values`` mapped linearly onto [-0.5, 0.5], as float64.

    The smallest value gets -0.5, the largest +0.5; equal values share the mean of their ranks
    (an antithetic pair of equal accuracy then cancels instead of pointing at random), so the
    result always sums to zero. ``+inf`` ranks last, ``-inf`` first; nan is refused (say which
    end it belongs at by replacing it, as the estimators do: the worst end).

    >>> centered_rank([3.0, 1.0, 2.0, 2.0]).tolist()
    [0.5, -0.5, 0.0, 0.0]
    """
    x = numpy.asarray(values, dtype=numpy.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("centered_rank: got no values")
    if numpy.isnan(x).any():
        raise ValueError(
            "centered_rank: the values contain nan; replace it with +inf or -inf to rank it last "
            "or first"
        )
    if x.size == 1:
        return numpy.zeros(1)
    order = numpy.argsort(x, kind="stable")
    ordered = x[order]
    # tie groups: where the sorted value changes, a new group starts
    starts = numpy.flatnonzero(numpy.r_[True, ordered[1:] != ordered[:-1]])
    ends = numpy.r_[starts[1:], x.size]
    mean_rank = (starts + ends - 1) / 2.0  # the mean of ranks start..end-1
    ranks = numpy.empty(x.size)
    ranks[order] = numpy.repeat(mean_rank, ends - starts)
    return ranks / (x.size - 1) - 0.5
