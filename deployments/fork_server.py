"""Imported by the fork server a warm worker's flow runs are forked from, after the rest of
its preloads (the fork server's only hook): builds there, once, what each flow run would
otherwise build for itself (`deployments.worker.warm_up_fork_server`)."""

from deployments.worker import warm_up_fork_server

warm_up_fork_server()
