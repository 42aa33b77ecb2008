"""leafdoc: diagnose plant diseases from leaf photos."""

__version__ = "0.1.0"
