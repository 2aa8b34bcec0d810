"""The features service (faust-streaming): validates events, computes point-in-time features.

Every entity's state lives in exactly one partition's table (changelog-backed), whatever key the
publisher used. The primary entity's table is partitioned like ``events``, so its aggregates are
added where the event is read; each other entity key with aggregates re-keys events through an
internal topic of its own. The last step emits the vector on ``features`` (see ``app`` and
``topology``).
"""
