"""Workers: RQ job functions, the scheduler and the ``nurture worker`` process.

The job queue carriers live in ``engine.adapters.jobqueue`` and the composition root in
``engine.runtime``, which the web app imports too. Nothing here connects at import: RQ
imports ``workers.jobs`` by path in every worker.
"""
