"""On-net only: numbers without a carrier reach other local accounts and nothing else."""

from __future__ import annotations

from .base import Provider


class LoopbackProvider(Provider):
    type = "loopback"
    off_net = False


PROVIDER = LoopbackProvider
