"""Shared kernel: configuration, database sessions, money, clock, errors, audit.

Nothing here imports Flask; domain packages build on it and the web layer
wraps it.
"""
