"""Destinations: the JSONL writer, the generic sandbox store, and (in runtime.dialects) CRM clients."""

from runtime.destinations.base import (
    CallStats,
    Destination,
    DestinationCapabilities,
    DestinationError,
    FatalError,
    RateLimit,
    TransientError,
    User,
    WriteItem,
    WriteResult,
)

__all__ = [
    "CallStats", "Destination", "DestinationCapabilities", "DestinationError", "FatalError",
    "RateLimit", "TransientError", "User", "WriteItem", "WriteResult",
]
