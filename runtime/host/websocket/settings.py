"""The websocket unit's settings, apart from the unit so ``runtime.config`` imports only these."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

MiB = 1024 * 1024


class WebSocketSettings(BaseSettings):
    """The websocket unit's section of ``runtime.config.Settings``."""

    ws_max_message_bytes: int = Field(
        MiB, ge=1, description="Largest WebSocket message a client may send a script; a larger "
        "one closes its connection with 1009.",
    )
    ws_max_connections_per_script: int = Field(
        10_000, ge=1, description="Open WebSocket connections one script may hold; an upgrade "
        "past it is answered 503.",
    )
    ws_max_connections_per_tenant: int = Field(
        20_000, ge=1, description="Open WebSocket connections all of a tenant's scripts may "
        "hold together; an upgrade past it is answered 503.",
    )
    ws_idle_timeout_ms: int = Field(
        300_000, ge=0, description="A WebSocket connection that sends nothing for this long is "
        "closed with 1001 (0: never).",
    )
    ws_ping_interval_ms: int = Field(
        20_000, ge=0, description="How often the server pings each WebSocket client, where the "
        "server supports it (0: never); a client that does not answer is dropped.",
    )
    ws_send_queue_bytes: int = Field(
        16 * MiB, ge=1, description="What may wait to be sent to one WebSocket client; a "
        "client that falls further behind is closed with 1008.",
    )
