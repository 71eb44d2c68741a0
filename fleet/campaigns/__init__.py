"""Firmware campaigns: releases rolled out in stages, hosted files, log uploads (docs/firmware.md).

Floors: `staging` (pure) < `services` (writes) < `dispatch`, `log_requests`, `hosting` < `api`."""
