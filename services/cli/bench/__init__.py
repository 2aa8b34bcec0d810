"""``streamml bench``: River in process against the whole pipeline on the real broker.

One run, one stream, one model: River's predict-then-learn in process (events/s, accuracy); the
running services under a fresh topic prefix (the highest rate at which consumer lag stays
bounded, end-to-end latency percentiles at 1,000 events/s and at 80% of that maximum, the memory
of every service and of the broker); the ratio of the two; and a profile of the hot path.
Results go to ``bench/`` as JSON and Markdown (see ``bench/README.md``).

Modules: :mod:`.stats` (percentiles, the lag decision), :mod:`.scrape` (Prometheus text, RSS),
:mod:`.workload` (the stream), :mod:`.inprocess` (River alone), :mod:`.wire` (paced producer,
prediction readers), :mod:`.stack_run` (the services), :mod:`.pipeline` (rate steps, latency
runs), :mod:`.profiling` (py-spy), :mod:`.report` (tables and files), :mod:`.command` (the CLI).
"""
