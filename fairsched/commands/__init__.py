"""Command implementations registered on the ``fairsched`` typer app in :mod:`fairsched.cli`
(one module a command; each imports the CLI helpers lazily to avoid an import cycle)."""
