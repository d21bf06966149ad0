"""Run :class:`FastPub` until SIGINT or SIGTERM (on uvloop when it is installed)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal

from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.fastserver.gateway import FastPub

logger = logging.getLogger("racetrack.pub")


async def _serve(config: PubConfig, host: str, port: int) -> None:
    pub = FastPub(config)
    await pub.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await pub.listen(host, port)
        await stopping.wait()
    finally:
        await pub.stop()


def serve(host: str = "127.0.0.1", port: int = 7105, config: PubConfig | None = None) -> None:
    """Serve Pub on the fast server, configured from ``PUB_*`` variables unless ``config``."""
    logging.basicConfig(level=logging.WARNING)
    config = PubConfig.from_env() if config is None else config
    if importlib.util.find_spec("uvloop"):
        import uvloop

        uvloop.run(_serve(config, host, port))
    else:
        asyncio.run(_serve(config, host, port))
