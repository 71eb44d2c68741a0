"""Configuration baselines per model, their application and drift (docs/operations.md).

Floors: `rules` (pure) < `services` (writes) < `dispatch` (the CALLs) < `api`."""
