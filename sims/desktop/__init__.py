"""Simulated legacy desktop client (about 2005): 财务管理系统, a Tk thick client.

The same report catalogue as the ERP (:mod:`sims.erp.reports`), reached through windows
instead of pages: a tip of the day, a login with an untitled password prompt, a main
window with menus, tabs and a paged grid, a save dialog whose autocompletion swallows a
quick Enter, files held half written until a message is dismissed, and notices that
steal the focus. ``python -m sims.desktop`` runs it; its state port (``/_sim/state``,
``/_sim/publish``, ``/_sim/faults``) is ground truth for tests and never touches Tk.
"""
