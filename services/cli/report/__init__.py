"""``streamml report``: an HTML page with PNG charts that tells what happened in a run.

The steps live apart so each can be tested alone: :mod:`.read` reads the run's topics from Kafka
into :class:`.records.RunRecords`, :mod:`.aggregate` (pure) turns them into a
:class:`.aggregate.RunSummary`, :mod:`.render` draws the charts with matplotlib, :mod:`.page`
writes the self-contained ``index.html``, and :mod:`.command` wires them for the CLI.
"""
