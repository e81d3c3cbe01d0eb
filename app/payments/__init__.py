"""Payments: prepaid vouchers (充值卡) sold offline and redeemed into the ledger."""
