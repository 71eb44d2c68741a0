"""The views of roaming, by role: `cpo` (the OCPI endpoints partner eMSPs call on our
network), `emsp` (the OCPI endpoints partner CPOs call for our drivers' cards), `hub` (Hub Client
Info, which hubs push in both roles) and `portal` (the host's partner, terminal and access-point
pages)."""
