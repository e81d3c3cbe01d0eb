"""What is bought: host carriers, rate cards, usage import, settlement (DESIGN §7)."""
