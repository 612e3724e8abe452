"""The `konsilium` command line (typer)."""
