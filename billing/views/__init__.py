"""The portal pages of billing, by job: `pages` (prices, rates, payouts, refunds, statements,
reconciliations, a session's cost, subscriptions) and `payments` (the sandbox's hosted card and
onboarding pages, the payout account's onboarding with the processor)."""
