"""The features service (faust-streaming): validates events, computes point-in-time features.

Events are re-keyed through one internal topic per entity key that has aggregates, so every
entity's state lives in exactly one partition's table (changelog-backed), whatever key the
publisher used. The last stage emits the vector on ``features`` keyed by ``event_id``.
"""
