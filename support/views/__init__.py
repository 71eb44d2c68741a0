"""The pages of support, by job: `pages` (the contact form, a host's tickets), `inbound` (the
email provider's inbound webhook: replies to tickets) and `licenses` (a charger's license in the
host portal)."""
