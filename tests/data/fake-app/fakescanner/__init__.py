"""A fake ticket-scanner for the OTA tests (tests/test_ota_*.py)."""
