"""``--log-format json``: the library's log records as one JSON object per line on stderr.

Batch jobs ship their stderr to a log collector; a JSON line per record keeps the fields the
client adds to each record (``order_number``, ``attempt``) as fields instead of prose.  Without
the option the records go where Python sends them when nothing is configured (their message, on
stderr, WARNING and above).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Final

__all__ = ["LOG_FORMATS", "JsonFormatter", "log_format"]

LOG_FORMATS: Final = ("text", "json")

# The structured fields the client puts on its records (``extra=``), copied when present.
_FIELDS: Final = ("order_number", "attempt")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON for ``record``.

        Args:
            record: The record.

        Returns:
            The JSON text, without a newline.
        """
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


@contextlib.contextmanager
def log_format(name: str, stream: IO[str]) -> Iterator[None]:
    """Send the ``smime_collect`` logger's records to ``stream`` as JSON lines while in use.

    Args:
        name: ``text`` (nothing changes) or ``json``.
        stream: Where the lines go (stderr).

    Yields:
        Nothing; the handler is removed on exit.
    """
    if name != "json":
        yield
        return
    logger = logging.getLogger("smime_collect")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
