"""The `evalcore` command: the typer app (`app`) and one module per command group."""
