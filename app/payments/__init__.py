"""Money in and out (DESIGN §5): Stripe Checkout and its webhook, card money services with
their own units of work, vouchers (充值卡), staff-recorded payments and adjustments, refunds.

services.py        offline payments, adjustments, payment readers and checks
stripe_payments.py card payments through Checkout; booking announces PaymentSucceeded
webhooks.py        handle_stripe_event: a verified Stripe event applied once
checkout.py        card money started from a page: commit our row, call Stripe, record
refunds.py         refunds: requested, queued, sent, followed, paid offline
vouchers.py        voucher batches, redemption with lockouts, voids
queries.py         readers for the console's money lists
"""
