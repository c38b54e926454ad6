"""What a child process gets: this process's environment without the keyring master key.

A child inherits its parent's environment: the browser (through Playwright's driver),
the simulators, a virus scanner. None of them needs the master key, and a browser that
crashes or is exploited should not hold it: every child is started with ``child_env``.

Kept out of ``credentials`` (which imports keyring) so that any module may use it cheaply.

``os.environ`` is shared by every thread, and a fleet worker's lanes start browsers side
by side: one withholds the master key while another copies the environment. A copy that
iterates ``os.environ`` while another thread removes a name fails (KeyError), so every
change this program makes to ``os.environ`` after start-up, and every copy of it, holds
``environ_lock``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

MASTER_KEY_ENV = "FLEET_KEYRING_KEY"

# Reentrant: a block that changes os.environ may copy it (a browser started while the
# key is withheld).
environ_lock = threading.RLock()


def environ_copy() -> dict[str, str]:
    """``os.environ`` as it stands, copied whole while no other thread changes it."""
    with environ_lock:
        return dict(os.environ)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ``env`` (default ``os.environ``) without the
    keyring master key."""
    source = environ_copy() if env is None or env is os.environ else env
    return {name: value for name, value in source.items() if name != MASTER_KEY_ENV}


@contextmanager
def master_key_withheld() -> Iterator[None]:
    """``os.environ`` without the master key while the block runs, for a library that
    starts its child from ``os.environ`` itself (Playwright's driver); put back after,
    for this process's own keyring."""
    with environ_lock:
        key = os.environ.pop(MASTER_KEY_ENV, None)
        try:
            yield
        finally:
            if key is not None:
                os.environ[MASTER_KEY_ENV] = key
