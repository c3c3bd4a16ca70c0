"""Prefill grouping: every prompt once, neighbours by length, fewest positions plus passes."""

from __future__ import annotations

import itertools

import pytest

from workbench.engine.batching import prefill_groups


def _cost(lengths, groups, pass_cost):
    return sum(pass_cost + len(g) * max(lengths[i] for i in g) for g in groups)


def test_equal_lengths_make_one_pass():
    assert prefill_groups([50] * 8, pass_cost=32) == [list(range(8))]


def test_two_clusters_make_two_passes_longest_first():
    lengths = [20, 200, 21, 199, 22, 198]
    assert prefill_groups(lengths, pass_cost=32) == [[1, 3, 5], [4, 2, 0]]


def test_a_costly_pass_keeps_one_group_and_a_free_pass_wastes_no_padding():
    lengths = [30, 10, 20, 10]
    assert prefill_groups(lengths, pass_cost=10_000) == [[0, 2, 1, 3]]
    groups = prefill_groups(lengths, pass_cost=0)
    assert all(len({lengths[i] for i in g}) == 1 for g in groups)


@pytest.mark.parametrize("pass_cost", [0, 5, 32, 500])
def test_the_split_is_the_cheapest_of_all_contiguous_splits(pass_cost):
    lengths = [7, 91, 40, 41, 90, 8, 60, 12]
    groups = prefill_groups(lengths, pass_cost)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = min(
        _cost(
            lengths, [order[a:b] for a, b in itertools.pairwise((0, *cuts, len(order)))], pass_cost
        )
        for k in range(len(order))
        for cuts in itertools.combinations(range(1, len(order)), k)
    )
    assert _cost(lengths, groups, pass_cost) == best
