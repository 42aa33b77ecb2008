"""The command line, `leafdoc`: thin commands over the library (main.py registers them all)."""
