"""Consumer lag of the features worker, sampled from faust's consumer: pure arithmetic apart from
the faust calls, which stay in :func:`sample`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lag_by_topic(
    partitions: Iterable[tuple[str, int]],
    highwater: Callable[[str, int], int | None],
    position: Mapping[tuple[str, int], int | None],
    watched: Callable[[str], str | None],
) -> dict[str, int]:
    """Messages behind the end of each watched topic, summed over this worker's partitions.

    ``highwater`` gives the next offset to be written; ``position`` the next offset to read (or
    None when unknown). ``watched`` maps a topic to its reporting name, or None to skip it.
    """
    totals: dict[str, int] = {}
    for topic, partition in partitions:
        name = watched(topic)
        if name is None:
            continue
        high = highwater(topic, partition)
        next_read = position.get((topic, partition))
        if high is None or next_read is None:
            continue
        totals[name] = totals.get(name, 0) + max(0, high - next_read)
    return totals


def sample(consumer: Any, watched: Callable[[str], str | None]) -> dict[str, int]:
    """Lag per watched topic from a running faust consumer.

    faust tracks the offset of the last message read per partition (set to the committed offset
    on assignment) in ``_read_offset``; it has no public accessor, so a missing attribute yields
    no sample rather than an error.
    """
    read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
    position = {(tp.topic, tp.partition): (None if offset is None else offset + 1)
                for tp, offset in list(read.items())}

    def highwater(topic: str, partition: int) -> int | None:
        for tp in consumer.assignment():
            if tp.topic == topic and tp.partition == partition:
                try:
                    return int(consumer.highwater(tp))
                except (KeyError, TypeError, ValueError):
                    return None
        return None

    partitions = [(tp.topic, tp.partition) for tp in consumer.assignment()]
    return lag_by_topic(partitions, highwater, position, watched)
