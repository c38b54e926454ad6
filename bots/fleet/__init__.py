"""Fleet mode: workers on several machines over one PostgreSQL database (FLEET_DATABASE_URL),
the queue being Procrastinate's, in the same database as the ledger.

Nothing here is imported by the single-machine commands, and this file imports nothing:
Procrastinate loads only in the fleet's commands (start-up cost, tests/test_startup.py).
Inside: ``settings`` (``FleetSettings``: the fleet-wide timing numbers), ``app``
(``make_app``: the Procrastinate app on the fleet's database), ``schema`` (the queue's
schema, applied and upgraded by `runner.py ledger upgrade`), ``sweeper`` (finds jobs whose
worker died and retries them, or gives them up), ``tasks`` and ``worker`` (the jobs and
the worker process).
"""
