"""Customers and their lines (DESIGN §10): real-name KYC, the line lifecycle, the line-fee cap.

services.py   customers and lines: create, find, open
kyc.py        real-name data, encrypted, masked when shown
lifecycle.py  one service per change of a line's status; SIM swap
cap.py        the prepayment cap policy handed to the ledger (24 months of line fees)
notices.py    a customer as the recipient of a notice
handlers.py   what follows events from below: activation, password-reset notice; the cap policy
"""
