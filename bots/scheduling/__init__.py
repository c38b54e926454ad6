"""Scheduling: a recipe's `schedule:`, when it is due, and the commands that run it
(`run --scheduled` for cron and systemd, `serve`, `status`)."""
