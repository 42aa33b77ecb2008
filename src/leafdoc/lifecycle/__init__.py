"""The life of a model: the workspace a run works in, a training run from data to a scored model folder,
promotion. The CLI, the service and the experiment runner call these (a run reports train/events.py's events)."""
