"""The OCPP-J proxy: one charger socket to us, one socket of ours to each upstream backoffice.

docs/proxy.md describes the message flows, the transactionId mapping and the failure rules.
Modules: models (configuration, transaction ids, queued messages), rules (pure: which answer
the charger gets, id substitution, which upstream actions pass), services (writes),
links (the upstream sockets, on the consumer's event loop).
"""
