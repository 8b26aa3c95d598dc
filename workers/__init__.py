"""Workers: job functions, the job queue (RQ or in-process), the scheduler and the runtime.

Nothing here connects at import: RQ imports ``workers.jobs`` by path in every worker.
"""
