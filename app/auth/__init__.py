"""Staff users, roles and permissions, subscriber logins and API keys."""
