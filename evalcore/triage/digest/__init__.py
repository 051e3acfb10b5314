"""The weekly triage digest: gathered from the database, rendered to Slack Block Kit and
Markdown from Jinja2 templates, posted once per week per channel (updated on re-runs)."""

from evalcore.triage.digest.gather import Digest, DigestItem, gather_week, iso_week
from evalcore.triage.digest.post import (
    DigestFiles,
    DigestPostError,
    PostReport,
    digest_client,
    post_digest,
    write_digest_files,
)
from evalcore.triage.digest.render import (
    SlackMessage,
    render_markdown,
    render_slack,
    split_messages,
)

__all__ = [
    "Digest",
    "DigestFiles",
    "DigestItem",
    "DigestPostError",
    "PostReport",
    "SlackMessage",
    "digest_client",
    "gather_week",
    "iso_week",
    "post_digest",
    "render_markdown",
    "render_slack",
    "split_messages",
    "write_digest_files",
]
