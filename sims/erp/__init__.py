"""Simulated legacy ERP (about 2005): the system the report-capturing robots log into.

Server-rendered HTML in GBK inside a frameset, a one-time login token, a session cookie
that dies when idle, seeded latency, background report generation, and the legacy habit
of answering ``200 OK`` with the login page where a file was expected.

``create_app`` (in :mod:`sims.erp.app`) builds the Flask application; ``python -m sims.erp``
serves it on loopback. The report catalogue and the report files are deterministic from
the seed, and ``GET /_sim/state`` exposes them as ground truth for tests.
"""
