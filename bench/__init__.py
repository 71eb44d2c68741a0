"""Benchmark suite for the OCPP websocket path: `make bench` / `python -m bench`.

Scenarios (all in one run, one table, JSON written to bench/results/):
throughput (ours vs the `ocpp`+`websockets` peer vs a raw echo ceiling), fleet,
reconnect storm, scale-out over several processes, and the message log at 10M rows.
See docs/performance.md.
"""
