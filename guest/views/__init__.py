"""The guest's pages, by job: `pages` (the QR landing, start, pay, the live session, stop, the
receipt, the labels a host prints) and `stay` (a stay's link and code: charging included in a
booking)."""
