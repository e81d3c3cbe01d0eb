"""The prepaid ledger (DESIGN §5)."""
