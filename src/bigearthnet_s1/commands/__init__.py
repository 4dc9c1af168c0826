"""Sub-commands of the ``bigearthnet-s1`` CLI, one module each (see ``cli.COMMANDS``)."""
