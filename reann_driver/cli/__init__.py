"""Command-line entry points (thin wrappers around library functions)."""
