"""The portal pages of reliability, by job: `uptime` (a charger's and the fleet's uptime, its
timeline, exclusions, the success KPIs, an alert recipient's confirmation link) and `alerts` (the host's alert rules)."""
