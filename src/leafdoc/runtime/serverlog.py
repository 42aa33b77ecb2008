"""How `leafdoc serve`'s processes log: uvicorn's logging, with leafdoc's own loggers printed the same way at the
same level. The API workers apply it (so `serve` says which model version it serves, and why it falls back to
model.onnx), and the web page's own process (so it says when the page is built)."""

from __future__ import annotations

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # local time, as the training worker's lines (cli/main.py) give it


def log_config(log_level: str) -> dict:
    """uvicorn's logging, with leafdoc's own loggers printed the same way at the same level (each worker applies
    it), so `leafdoc serve` says which model version it serves, and why it falls back to model.onnx."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    level = "DEBUG" if log_level.lower() == "trace" else log_level.upper()
    config["loggers"]["leafdoc"] = {"handlers": ["default"], "level": level, "propagate": False}
    for formatter in config["formatters"].values():  # when it happened: a log file or `docker logs` has no other clock
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]
        formatter["datefmt"] = DATE_FORMAT
    return config
