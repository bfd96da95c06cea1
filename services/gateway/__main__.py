"""``python -m services.gateway``: serve the gateway with uvicorn on gateway_host:gateway_port."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from shared.bus.lifecycle import check_credentials, prepare
from shared.redis_ops.acl import local_credentials

WS_MAX_MESSAGE_BYTES = 64 * 1024


def main() -> None:
    settings = local_credentials(
        prepare(), "gateway"
    )  # uvicorn turns SIGTERM/SIGINT into a graceful shutdown
    check_credentials(settings)  # wrong ones: one line and exit 78, not retrying forever
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_heartbeat_s,
        ws_ping_timeout=settings.ws_heartbeat_s * 2,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
