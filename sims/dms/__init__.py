"""Simulated document-management system (English): an archive with its own metadata.

Run it with ``python -m sims.dms --port 8304``; build it in-process with
:func:`sims.dms.app.create_app`. ``GET /_sim/state`` lists every filed document.
"""
