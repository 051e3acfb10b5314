"""The real Slack side: the Web API client with its retry handlers (`client`), the
interactivity receiver (`receiver`), Socket Mode (`socket_mode`), request signing
(`signing`), the escaping of text the bot posts (`text`) and Block Kit's limits
(`blockkit`). The local fake of Slack's API lives in `evalcore.local.fake_slack`."""
