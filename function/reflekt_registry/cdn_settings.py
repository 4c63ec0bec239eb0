"""The CDN settings document that keeps browser and mobile SDKs sending to the registry instead of Segment."""

from __future__ import annotations

from typing import Any

from .request import ApiGatewayEvent
from .routes import Route


def settings_document(event: ApiGatewayEvent, route: Route) -> dict[str, Any]:
    """What cdn.segment.com would serve, pointing apiHost back here.

    Swift and Kotlin replace their configured apiHost with integrations["Segment.io"].apiHost once settings
    load, so the registry must serve its own; analytics.js takes the write key it sends from apiKey.
    """
    api_host = f"{event.domain_name}{route.prefix}/v1"
    protocol = event.headers.get("x-forwarded-proto", "https")
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": route.write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        # Telemetry would come to /v1/m here and be discarded: don't ask SDKs to send it.
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }
