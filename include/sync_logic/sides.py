"""The vocabulary shared by every layer: a CRM is a ``Side``, a sync way a ``Direction``, a decision an ``Action``.

StrEnums, so a value compares equal to its plain string in frames, XCom, JSON and connection extras.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """One of the two CRMs."""

    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"

    @property
    def other(self) -> Side:
        """The CRM a value from this side is written to."""
        return Side.HUBSPOT if self is Side.SALESFORCE else Side.SALESFORCE

    @property
    def label(self) -> str:
        """The CRM's own spelling, for people (reasons, the view)."""
        return "Salesforce" if self is Side.SALESFORCE else "HubSpot"


class Direction(StrEnum):
    """Which way changes flow (the DAG's ``direction`` param and a field's ``direction``)."""

    BOTH = "both"
    SALESFORCE_TO_HUBSPOT = "salesforce_to_hubspot"
    HUBSPOT_TO_SALESFORCE = "hubspot_to_salesforce"

    @property
    def targets(self) -> tuple[Side, ...]:
        """The sides written to."""
        if self is Direction.SALESFORCE_TO_HUBSPOT:
            return (Side.HUBSPOT,)
        if self is Direction.HUBSPOT_TO_SALESFORCE:
            return (Side.SALESFORCE,)
        return (Side.HUBSPOT, Side.SALESFORCE)


class Action(StrEnum):
    """What a decision does to its target; the first three write."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SKIP = "skip"
    REJECT = "reject"


WRITE_ACTIONS: tuple[Action, ...] = (Action.CREATE, Action.UPDATE, Action.DELETE)
