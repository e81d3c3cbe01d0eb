"""Bringing subscribers in: the store's purchase workflow (hold, pay, complete) and the
migration import from another platform."""
