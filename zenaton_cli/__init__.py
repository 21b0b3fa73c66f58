"""The zenaton command line."""
