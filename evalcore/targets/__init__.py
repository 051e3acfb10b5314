"""What is evaluated: an OpenAI-compatible chat endpoint, an HTTP JSON service, or a Python
function, each turning a case input into a `Reply` or raising a `TargetError`.

Errors form one hierarchy, caught at the level a caller cares about:

    TargetError                 the target gave no usable reply (recorded as an error)
    ├── TargetTimeout           retried
    ├── TargetConnectionError   retried (refused, reset, server hung up)
    ├── RateLimited             retried after `retry_after`
    ├── ServerError             retried (5xx)
    ├── ClientError             not retried (4xx: bad key, bad model, bad request)
    ├── BadReply                not retried (2xx, but not the protocol's shape)
    └── CallableError           not retried (the Python function raised)
    ConfigError                 the target cannot be built at all
"""

from evalcore.targets.base import (
    BadReply,
    CallableError,
    ClientError,
    ConfigError,
    RateLimited,
    Reply,
    ServerError,
    Target,
    TargetConnectionError,
    TargetError,
    TargetTimeout,
    ToolCall,
    Usage,
)
from evalcore.targets.factory import build_target, describe_target
from evalcore.targets.http import check_status, classify_http_error, make_client
from evalcore.targets.http_json import HttpJsonTarget
from evalcore.targets.openai_chat import OpenAIChatTarget
from evalcore.targets.python_callable import PythonTarget

__all__ = [
    "BadReply",
    "CallableError",
    "ClientError",
    "ConfigError",
    "HttpJsonTarget",
    "OpenAIChatTarget",
    "PythonTarget",
    "RateLimited",
    "Reply",
    "ServerError",
    "Target",
    "TargetConnectionError",
    "TargetError",
    "TargetTimeout",
    "ToolCall",
    "Usage",
    "build_target",
    "check_status",
    "classify_http_error",
    "describe_target",
    "make_client",
]
