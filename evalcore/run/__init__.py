"""The run engine: call the target for every (case, sample), score, persist, resume;
one shard of a run's pairs at a time when it is sharded."""

from evalcore.run.engine import Counters, EngineOptions, execute, work_items
from evalcore.run.retry import RetryPolicy
from evalcore.run.service import (
    RunReport,
    RunRequest,
    RunSetupError,
    ShardedReport,
    check_judge_key,
    execute_run,
    execute_shards,
    flow_url,
    full_url,
    keep_full_url,
    override_target,
    prepare_run,
    run_for_resume,
)
from evalcore.run.shards import Shard, ShardProgress, ShardsFailed, shard_of, shard_progress

__all__ = [
    "Counters",
    "EngineOptions",
    "RetryPolicy",
    "RunReport",
    "RunRequest",
    "RunSetupError",
    "Shard",
    "ShardProgress",
    "ShardedReport",
    "ShardsFailed",
    "check_judge_key",
    "execute",
    "execute_run",
    "execute_shards",
    "flow_url",
    "full_url",
    "keep_full_url",
    "override_target",
    "prepare_run",
    "run_for_resume",
    "shard_of",
    "shard_progress",
    "work_items",
]
