"""Bringing subscribers in (DESIGN §2, floor 6).

* The store's purchase workflow: a buyer holds a number for their cart,
  places an order for a plan and the held number (orders.py), pays it —
  from the balance, with a voucher, by card through Stripe Checkout, or at
  a store — and the paid order is completed into a pending line
  (purchase.py). A card payment's `PaymentSucceeded` event completes its
  order (handlers.py); the scheduler expires orders whose hold ran out
  (jobs.py).
* The migration import from another platform (migration*.py): customers,
  lines, current periods and opening balances from one CSV file, read by the
  file-import kit of app/core, all or nothing, every reject with its line
  number, raw text and reason.
"""
