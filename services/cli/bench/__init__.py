"""``streamml bench``: River in process against the whole pipeline on the real broker.

One run, one stream, one model: River's predict-then-learn in process (events/s, accuracy); the
running services under a fresh topic prefix (the highest rate at which consumer lag stays
bounded, end-to-end latency percentiles at 1,000 events/s and at 80% of that maximum, the memory
of every service and of the broker); the ratio of the two; and a profile of the hot path. Next
to the sustained rate, the anchors on the same stream and broker: the drain rate of the
pipeline (the stream loaded before the services start) and of two peers, a plain
confluent-kafka predict-learn loop and a quixstreams application, with the ratios
pipeline / peer. Results go to ``bench/`` as JSON and Markdown (see ``bench/README.md``).

Modules: :mod:`.stats` (percentiles, the lag decision), :mod:`.scrape` (Prometheus text, RSS),
:mod:`.workload` (the stream), :mod:`.inprocess` (River alone), :mod:`.wire` (paced producer,
prediction readers), :mod:`.stack_run` (the services), :mod:`.pipeline` (rate steps, latency
runs), :mod:`.profiling` (py-spy), :mod:`.report` (tables and files), :mod:`.command` (the CLI);
the anchors: :mod:`.peer_core` (what a peer does per event, importable without the project),
:mod:`.peer_plain` and :mod:`.peer_quix` (the peers' programs), :mod:`.peer_venv` (the
quixstreams virtualenv), :mod:`.peers` (running them, reading their outputs), :mod:`.drain`
(the pipeline's drain), :mod:`.anchors` (their ratios and rows).
"""
