"""The document pipeline: runs (capture, inventory) and the stages a document flows
through once: listing → download → checks → upload → confirm (with fixity).

Stages talk to a driver session (bots.drivers), never to a browser directly; one layer
(``stages.StageRunner``) owns retries, re-login and the circuit breaker; a document is
a context manager that records its own outcome (``document.DocumentWork``); every run
starts and finishes through one run context (``context.run_context``).
"""

from .capture import capture
from .context import RunContext, local_now, run_context
from .inventory import inventory
from .summary import RunSummary

__all__ = ["RunContext", "RunSummary", "capture", "inventory", "local_now", "run_context"]
