"""A simulated WhatsApp service: linked devices, QR codes, messages, faults."""
