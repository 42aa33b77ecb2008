"""Experiment recipes: declarative files in recipes/ that train and compare several runs with the
library, track them in MLflow and write a Markdown report (`leafdoc experiment RECIPE`)."""
