"""The prepaid ledger (DESIGN §5).

accounts.py   ledger accounts: customer prepaid, system accounts in shards
posting.py    the posting rules: `post_entry` (one entry), `post_entries` (a batch)
cap.py        the prepayment cap, computed by a policy registered from above
movements.py  credits, receipts, charges, adjustments and refunds
balances.py   balances now and as of a past time; a customer's history
checks.py     the invariants `mvno ledger check` verifies
"""
