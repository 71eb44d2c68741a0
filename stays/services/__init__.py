"""Writes of stays, the app's public face: other apps import from here
(`from stays.services import unit_create`). One module per job:

- `stays`: units, stay policies, reservations and their access codes, calendar feeds synced.
- `pms`: PMS integrations (Guesty, Hospitable, Track): credentials, listings, reservations pulled.

`pms` imports `stays` (a reservation's access code is sent the same way), never the reverse.
"""

from .pms import (
    MAX_BACKOFF,
    PmsSyncResult,
    credentials_from,
    integration_create,
    integration_credentials,
    integration_credentials_replace,
    integration_credentials_set,
    integration_disconnect,
    listing_map,
    pms_integrations_due,
    pms_sync,
    pms_webhook,
)
from .stays import (
    FEED_MAX_BYTES,
    FEED_TIMEOUT_S,
    KEEP_PAST,
    URL_MESSAGE,
    SyncResult,
    access_codes_unsent_send,
    access_link,
    calendar_feed_create,
    calendar_feed_delete,
    calendar_feed_sync,
    calendar_feeds_due,
    calendar_feeds_queued,
    check_calendar_url,
    reservation_create,
    reservation_send_code,
    reservation_update,
    send_code_on_commit,
    stay_policy_update,
    unit_check,
    unit_create,
    unit_update,
)

__all__ = [
    "FEED_MAX_BYTES",
    "FEED_TIMEOUT_S",
    "KEEP_PAST",
    "MAX_BACKOFF",
    "PmsSyncResult",
    "SyncResult",
    "URL_MESSAGE",
    "access_link",
    "calendar_feed_create",
    "calendar_feed_delete",
    "calendar_feed_sync",
    "access_codes_unsent_send",
    "calendar_feeds_due",
    "calendar_feeds_queued",
    "check_calendar_url",
    "credentials_from",
    "integration_create",
    "integration_credentials",
    "integration_credentials_replace",
    "integration_disconnect",
    "integration_credentials_set",
    "listing_map",
    "pms_integrations_due",
    "pms_sync",
    "pms_webhook",
    "reservation_create",
    "reservation_send_code",
    "reservation_update",
    "send_code_on_commit",
    "stay_policy_update",
    "unit_check",
    "unit_create",
    "unit_update",
]
