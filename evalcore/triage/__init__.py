"""From a production failure to an eval case: intake and de-duplication, the weekly
digest (`digest/`), owners' decisions from buttons and thread replies, applying them to
the versioned files (`apply`), and the handover answers."""
