"""Retail charging: line periods and allowances, renewals (DESIGN §9)."""
