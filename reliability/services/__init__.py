"""Reliability's writes, one module per job (issue 50: writes in services, the pure rules beside
them in outages.py, alerting.py, kpis.py and window.py):

- `timeline`: the port timeline, copied from what chargers records, and its facts read back.
- `uptime`: uptime per port counted from the timeline (after the links are brought up to date).
- `exclusions`: exclusions from uptime with the regulators' caps, audited.
- `alerts`: alerts opened and cleared, their events delivered by email and signed webhook.
- `recipients`: who alert emails may go to (confirmed addresses).
- `alert_rules`: alert rules written from the portal.
- `first_aid`: what an alert rule may send a charger by itself.

This is the app's public face: other apps import what they need from here
(`from reliability.services import subject_problem_report`, or a module such as
`from reliability.services import timeline`).
"""

from ..faults import shared_table as shared_fault_table
from .alerts import (
    charger_facts,
    fault_facts,
    problem_report,
    problem_resolved,
    subject_problem_report,
    subject_problem_resolved,
)

__all__ = [
    "charger_facts",
    "fault_facts",
    "problem_report",
    "problem_resolved",
    "shared_fault_table",
    "subject_problem_report",
    "subject_problem_resolved",
]
