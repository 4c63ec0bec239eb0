"""JSON-lines logging: one object per line, so CloudWatch Logs Insights can query every field."""

from __future__ import annotations

import json
import logging
import sys
import time

LOGGER_NAME = "reflekt_registry"


class JsonFormatter(logging.Formatter):
    """Renders a record and the fields passed in `extra={"fields": {...}}` as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(debug: bool) -> logging.Logger:
    """Sets up the package logger once; later calls only change the level."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        # The Lambda runtime puts its own handler on the root logger; without this every line is logged twice.
        logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
