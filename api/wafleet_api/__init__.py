"""The REST API: onboarding, status, QR codes, messages (legacy paths and shapes)."""
