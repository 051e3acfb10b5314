"""The run engine: call the target for every (case, sample), score, persist, resume."""

from evalcore.run.engine import Counters, EngineOptions, execute, work_items
from evalcore.run.retry import RetryPolicy
from evalcore.run.service import (
    RunReport,
    RunRequest,
    RunSetupError,
    execute_run,
    flow_url,
    full_url,
    keep_full_url,
    override_target,
    prepare_run,
    run_for_resume,
)

__all__ = [
    "Counters",
    "EngineOptions",
    "RetryPolicy",
    "RunReport",
    "RunRequest",
    "RunSetupError",
    "execute",
    "execute_run",
    "flow_url",
    "full_url",
    "keep_full_url",
    "override_target",
    "prepare_run",
    "run_for_resume",
    "work_items",
]
