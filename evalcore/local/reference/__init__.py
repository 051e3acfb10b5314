"""The bundled reference target: a deterministic OpenAI-compatible support assistant with
fault and regression knobs, so the harness can be demonstrated and tested end to end
without a real model."""

from evalcore.local.reference.assistant import JUDGE_SYSTEM_PREFIX, VERSIONS, complete
from evalcore.local.reference.server import Knobs, ReferenceServer, free_port, serve

__all__ = [
    "JUDGE_SYSTEM_PREFIX",
    "VERSIONS",
    "Knobs",
    "ReferenceServer",
    "complete",
    "free_port",
    "serve",
]
