"""Reconciliation: the source's listings, our ledger and the archive's inventory, matched."""
