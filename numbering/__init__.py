"""Number blocks, phone numbers and SIMs/eSIMs bought from host carriers (DESIGN §6)."""
