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


class ContractCard(Protocol):
    def __call__(self, emaid: str) -> int | None:
        """The own card (its id) whose contract id on other networks an eMAID is, or None: a
        car with a contract for one of our cards charges on that card."""
        ...


contract_card: Provider[ContractCard] = Provider("own card of a contract id")  # roaming


class ContractRoute(Protocol):
    def __call__(self, organization_id: int, country_code: str, party_id: str) -> int | None:
        """The provider (its id) of the eMSP party (country code, party id) that a hub of the
        operator says it connects, made the operator's provider routed by that hub, or None: a
        foreign contract whose provider sits behind a hub is asked live through it."""
        ...


contract_route: Provider[ContractRoute] = Provider("hub route to a contract's provider")  # roaming
