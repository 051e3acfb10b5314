"""`evalcore` subcommands that live beside cli.py, one module per area, registered there."""
