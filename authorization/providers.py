"""What authorization's pages ask of the apps above it (backoffice.providers)."""

from __future__ import annotations

from typing import Protocol

from backoffice.providers import Provider


class ContractIds(Protocol):
    def __call__(self, cards: list[tuple[int, int | None]]) -> dict[int, str]:
        """The contract ids (eMAIDs) of own cards, given as (card id, organization id): the
        id each card carries on other networks, for the cards of an organization that issues
        them as an eMSP; cards without one are left out."""
        ...


contract_ids: Provider[ContractIds] = Provider("contract ids of own cards")  # roaming
