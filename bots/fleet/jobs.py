"""The fleet's jobs, as Procrastinate tasks (a blueprint the app adds under `fleet`).

Two kinds of job, small enough to spread one recipe's backlog over machines:

- ``list_recipe``: log in to the source, list once, record what is new, and defer the
  pending documents as ``capture_documents`` jobs (in one transaction). One listing of
  a recipe at a time across the fleet: the ledger's lease ``recipe:NAME``; and at most
  one waiting per recipe (its queueing lock).
- ``capture_documents``: a few documents of one recipe, each taken from wherever the
  ledger says it stands to confirmed, by the worker that runs the job: download, checks,
  upload and confirm on one machine, so a staged file never has to cross to another.

A job names its recipe by the file the deferring command loaded and by its digest; a
worker whose copy differs refuses the job (deploy the same recipes on every machine).
The work itself is the worker's (``bots.fleet.worker``): the task functions only find it
in the job's context.
"""

from __future__ import annotations

from typing import Any

from procrastinate import Blueprint, JobContext, RetryStrategy

blueprint = Blueprint()
NAMESPACE = "fleet"
LIST = f"{NAMESPACE}:list_recipe"
DOCUMENTS = f"{NAMESPACE}:capture_documents"
# Documents per job: small enough to spread a backlog over every lane of the fleet,
# big enough that a job's own cost (a row in the queue, a lane handed over) stays small.
BATCH = 5
# A document job that raised (a browser that would not start, a disk full for a moment, a
# bug) runs again, on whichever worker is free: each document carries on from where the
# ledger has it, so a retry doubles nothing. After the last try its documents wait in
# the ledger for the recipe's next listing.
JOB_RETRY = RetryStrategy(max_attempts=3, wait=30)  # up to 3 more tries


def _worker(context: JobContext) -> Any:
    return context.additional_context["fleet"]


@blueprint.task(name="list_recipe", pass_context=True)
def list_recipe(context: JobContext, recipe: str, digest: str) -> dict[str, Any]:
    """List ``recipe`` and defer its pending documents."""
    result: dict[str, Any] = _worker(context).list_recipe(recipe, digest, job=context.job.id)
    return result


@blueprint.task(name="capture_documents", pass_context=True, retry=JOB_RETRY)
def capture_documents(
    context: JobContext,
    recipe: str,
    digest: str,
    rows: dict[str, dict[str, Any]],
    shots: dict[str, list[str]] | None = None,
    tries: int = 0,
) -> dict[str, Any]:
    """Capture the documents ``rows`` names (each row as the listing saw it); ``tries``:
    how often this batch was deferred again because its system failed."""
    result: dict[str, Any] = _worker(context).capture_documents(
        recipe, digest, rows, shots or {}, job=context.job.id, tries=tries
    )
    return result
