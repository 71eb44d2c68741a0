"""Stays: units of a property, guests' reservations, calendar feeds and PMS integrations."""
