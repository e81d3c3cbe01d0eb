"""Customer service: notifications outbox (tickets come later) (DESIGN §11)."""
