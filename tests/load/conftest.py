"""The load suite uses the fault suite's servers: ``make_server`` and ``standalone_pub``."""

from tests.faults.conftest import make_server, standalone_pub

__all__ = ["make_server", "standalone_pub"]
