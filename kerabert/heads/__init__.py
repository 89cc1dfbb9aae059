"""Task heads and the registry that finds them through the `kerabert.heads` entry points."""

from kerabert.heads.base import CONTRACT_VERSION, Head
from kerabert.heads.registry import (
    BrokenHeadError,
    HeadConflictError,
    HeadInfo,
    HeadNotFoundError,
    available,
    create,
    get,
    names,
    register,
    unregister,
)

__all__ = [
    "CONTRACT_VERSION",
    "Head",
    "HeadInfo",
    "BrokenHeadError",
    "HeadConflictError",
    "HeadNotFoundError",
    "available",
    "create",
    "get",
    "names",
    "register",
    "unregister",
]
