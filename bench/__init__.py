"""Benchmarks: plain scripts that print figures, ratios and their targets."""
