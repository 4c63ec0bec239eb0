"""The tracking plan and controls one source is held to: plain values the configuration document builds."""

from __future__ import annotations

from typing import NamedTuple

# What happens to an event whose name matches no schema in its plans (Protocols: "Track unplanned events").
UNPLANNED_EVENTS = ("block", "allow")
# What happens to properties and traits its schema does not declare (Protocols: "Omit properties / traits").
UNPLANNED_PROPERTIES = ("allow", "omit")
# What happens to an event that breaks its schema (Protocols: "Advanced blocking controls").
VIOLATIONS = ("block", "allow", "omit")
# What happens to an event that breaks the common schema, which judges the whole payload.
COMMON_SCHEMA_VIOLATIONS = ("block", "allow")


class Controls(NamedTuple):
    """Each field's first allowed value above is its default, which is also the original registry's behaviour."""

    unplanned_events: str = UNPLANNED_EVENTS[0]
    unplanned_properties: str = UNPLANNED_PROPERTIES[0]
    violations: str = VIOLATIONS[0]
    common_schema: str | None = None  # the $id of a schema applied to every event's whole payload
    common_schema_violations: str = COMMON_SCHEMA_VIOLATIONS[0]


class Policy(NamedTuple):
    """The plans a source's events are looked up in by name, and its controls."""

    # $id prefixes, each ending in "/" (e.g. "jaffle_shop/", "segment/demo/"); empty means every schema in the
    # store forms one plan.
    plans: tuple[str, ...] = ()
    controls: Controls = Controls()


DEFAULT_POLICY = Policy()
