"""Command implementations registered on the ``fairsched`` typer app in :mod:`fairsched.cli`
(one module a command); the helpers they share are in :mod:`fairsched.commands.common`,
which does not import :mod:`fairsched.cli` (no import cycle)."""
