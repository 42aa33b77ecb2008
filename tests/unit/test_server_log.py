"""`leafdoc serve`'s log lines say when they happened (runtime/serverlog.py): uvicorn's format had no time, so a log
file or `docker logs` could not tell when a model was promoted or a worker restarted."""

from __future__ import annotations

import logging
import re

from uvicorn.logging import AccessFormatter, DefaultFormatter

from leafdoc.runtime.serverlog import log_config


def test_every_line_of_the_servers_log_starts_with_its_date_and_time():
    config = log_config("info")
    kinds = {"default": DefaultFormatter, "access": AccessFormatter}
    for name, kind in kinds.items():
        spec = config["formatters"][name]
        formatter = kind(fmt=spec["fmt"], datefmt=spec["datefmt"], use_colors=False)
        args = ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200) if name == "access" else ()
        msg = '%s - "%s %s HTTP/%s" %d' if name == "access" else "serving model version 2"
        record = logging.LogRecord("uvicorn", logging.INFO, __file__, 1, msg, args, None)
        line = formatter.format(record)
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO: ", line), line
    assert config["loggers"]["leafdoc"]["level"] == "INFO"
