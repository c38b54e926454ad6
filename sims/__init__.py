"""Simulated legacy systems the fleet is demonstrated and tested against.

They are the project's only stand-ins. Each behaves like the kind of system it stands
for (slow, stateful, sometimes rude) and exposes its own ground truth at
``GET /_sim/state`` for tests and people checking a run; the bots never read it.
"""
