"""What is sold: retail plans, add-ons and their margin (DESIGN §8)."""
