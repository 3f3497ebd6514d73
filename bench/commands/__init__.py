"""One module per ``isobench`` subcommand."""
