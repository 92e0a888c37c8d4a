"""The package version (one place; storage and the weight files record it)."""

__version__ = "0.1.0"
