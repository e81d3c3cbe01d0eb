"""Customers and their lines (DESIGN §10)."""
