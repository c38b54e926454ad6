"""Fleet mode: Procrastinate workers on several machines over one PostgreSQL database
(``FLEET_DATABASE_URL``), the ledger and the queue together. Imported only by the fleet's
commands (``worker``, ``run --fleet``, ``serve`` in fleet mode): the embedded default
never loads Procrastinate."""
