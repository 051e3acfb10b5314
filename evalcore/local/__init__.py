"""Stand-ins for real services on a laptop: the reference target (`reference/`), the fake
Slack API (`fake_slack/`), loopback servers, `evalcore up` (`stack`) and the demo.
Imported only by the CLI, the tests and the benchmarks."""
