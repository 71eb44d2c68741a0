"""OCPP-J protocol handling: framing and validation (protocol.py), 1.6 handlers (v16.py)."""
