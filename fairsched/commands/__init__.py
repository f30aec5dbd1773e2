"""Command implementations registered on the ``fairsched`` typer app in :mod:`fairsched.cli`
(one module a command); the helpers they share are in :mod:`fairsched.commands.common`,
which does not import :mod:`fairsched.cli` (no import cycle).

Conventions of every command: options are validated before anything runs; user errors
print one red ``error:`` line and exit with code 2 (:func:`~fairsched.commands.common.user_errors`);
outputs are written all or nothing; long runs show progress on stderr."""
