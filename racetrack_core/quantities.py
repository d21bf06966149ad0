"""Resource quantities in Kubernetes' spelling (``512Mi``, ``500m``), read so that they can be
compared: the manifest's ``resources``, the targets' defaults and caps.

Read once here for the schema's checks and every target. ``memory_quantity`` and
``cpu_quantity`` write them back in Kubernetes' canonical spelling (bytes as an integer, CPUs in
millicores), so a value capped by a target reads the same as the value a cluster shows.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from racetrack_core.errors import RacetrackError

MEMORY_SUFFIXES = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def memory_bytes(value: int | str, where: str) -> int:
    """``512Mi``, ``1G`` or a number of bytes, as bytes; RacetrackError naming ``where``."""
    if isinstance(value, bool):
        raise RacetrackError(f"{where}: {value!r} is not a memory quantity")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    number = text.rstrip("kMGTi")
    suffix = text[len(number) :]
    try:
        amount = Decimal(number)
    except InvalidOperation:
        amount = Decimal(-1)
    if suffix not in MEMORY_SUFFIXES or amount < 0:
        raise RacetrackError(
            f"{where}: {value!r} is not a memory quantity; use a number of bytes or one with "
            "k, M, G, Ki, Mi or Gi (like 512Mi)"
        )
    return int(amount * MEMORY_SUFFIXES[suffix])


def millicores(value: int | float | str, where: str) -> int:
    """``500m``, ``0.5`` or ``2`` CPUs, as millicores; RacetrackError naming ``where``."""
    if isinstance(value, bool):
        raise RacetrackError(f"{where}: {value!r} is not a CPU quantity")
    text = str(value).strip()
    scale = Decimal(1) if text.endswith("m") else Decimal(1000)
    try:
        amount = Decimal(text.removesuffix("m")) * scale
    except InvalidOperation:
        amount = Decimal(-1)
    if amount <= 0:
        raise RacetrackError(
            f"{where}: {value!r} is not a CPU quantity; use CPUs (0.5, 2) or millicores (500m)"
        )
    return max(1, int(amount))


def memory_quantity(amount: int) -> str:
    """Bytes as Kubernetes writes them: ``Mi``/``Gi`` when exact, else plain bytes."""
    for suffix in ("Gi", "Mi", "Ki"):
        if amount % MEMORY_SUFFIXES[suffix] == 0:
            return f"{amount // MEMORY_SUFFIXES[suffix]}{suffix}"
    return str(amount)


def cpu_quantity(amount: int) -> str:
    """Millicores as Kubernetes writes them (``500m``, ``2``)."""
    return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
