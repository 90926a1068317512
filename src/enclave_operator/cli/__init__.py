"""enclavectl: the command line."""
