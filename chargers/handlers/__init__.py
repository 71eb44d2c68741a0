"""The OCPP handlers: one function per action, OCPP words to domain words (v16.py, v16_security.py,
v201.py), and what both versions share (common.py: the Connection, `durably`, `decide`)."""
