"""The OCPP-J wire, pure: framing and schema validation (protocol.py, protocol201.py), lenient
reading of transaction messages (tolerant.py), energy and readings (energy.py, readings.py), what
PostgreSQL can store (storable.py), the 2.0.1 command and smart-charging payloads."""
