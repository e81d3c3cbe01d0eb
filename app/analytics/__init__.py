"""Figures about the business for staff: the dashboard's counts (DESIGN §2, floor 6).

Readers only: nothing here writes. Every figure is counted from the rows
themselves, never estimated or cached.
"""
