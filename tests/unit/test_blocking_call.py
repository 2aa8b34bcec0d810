"""call_within: a blocking call's result, its exception, or CallHung at the deadline."""

from __future__ import annotations

import threading

import pytest

from services.common.blocking_call import CallHung, call_within


def test_a_call_that_returns_in_time_gives_its_result() -> None:
    assert call_within(lambda: 42, 5.0, "answering") == 42


def test_a_call_that_fails_in_time_raises_its_own_error() -> None:
    def fail() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        call_within(fail, 5.0, "refusing")


def test_a_call_still_blocked_at_the_deadline_raises_call_hung_naming_it() -> None:
    release = threading.Event()
    try:
        with pytest.raises(CallHung, match="waiting for a dead coordinator did not return"):
            call_within(release.wait, 0.05, "waiting for a dead coordinator")
    finally:
        release.set()
