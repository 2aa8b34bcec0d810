"""Consumer lag arithmetic of the features worker."""

from __future__ import annotations

from services.features.lag import lag_by_topic


def test_lag_sums_watched_partitions_and_skips_unknown_positions() -> None:
    highwaters = {("events", 0): 100, ("events", 1): 50, ("by-user", 0): 10, ("changelog", 0): 7}
    positions: dict[tuple[str, int], int | None] = {
        ("events", 0): 90, ("events", 1): 50, ("by-user", 0): None, ("changelog", 0): 0,
    }
    watched = {"events": "events", "by-user": "by-user"}
    lag = lag_by_topic(highwaters, lambda t, p: highwaters.get((t, p)), positions, watched.get)
    assert lag == {"events": 10}


def test_lag_is_never_negative() -> None:
    lag = lag_by_topic([("events", 0)], lambda t, p: 5, {("events", 0): 9}, lambda t: t)
    assert lag == {"events": 0}
