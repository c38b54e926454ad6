#!/usr/bin/env python3
"""Command line of the RPA bot fleet; cron and robot.yaml call this. See --help."""

from bots.cli import entry

if __name__ == "__main__":
    entry()
