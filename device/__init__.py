"""ticket-scanner: the application (no hardware imports here)."""
