"""Redact every Python log record when it is created, before any handler can see it.

Our `RedactingLogHandler` only guards the path into OpenTelemetry. The Functions Python worker adds a
handler of its own to the root logger and forwards every record to the host, which may export it with
the host's telemetry, outside our pipeline. A `logging.Filter` would not help: logger filters do not see
records propagated from child loggers (the Azure SDK's, for example). A record factory does: it runs
for every record of every logger, so the worker's handler, ours and any other only ever receive the
redacted message and a stack trace without exception text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from shared.scrub import exception_type_name, safe_stacktrace, scrub_log_message

# Set on records this factory produced: `msg` is already redacted and `args` is empty.
REDACTED_MARKER = "_phi_redacted"
# (exception type, traceback) kept for our OTel handler after `exc_info` is removed.
SAFE_EXC_ATTRIBUTE = "_phi_safe_exc"

_lock = threading.Lock()
_installed: Callable[..., logging.LogRecord] | None = None


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    record.msg = scrub_log_message(record.msg, record.args)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        exc_type, _, tb = record.exc_info
        setattr(record, SAFE_EXC_ATTRIBUTE, (exc_type, tb))
        # Formatters use `exc_text` when it is set and `exc_info` is empty: the message never returns.
        record.exc_text = f"{exception_type_name(exc_type)}: [redacted]\n{safe_stacktrace(exc_type, tb)}"
        record.exc_info = None
    setattr(record, REDACTED_MARKER, True)
    return record


def install_redacting_record_factory() -> None:
    """Idempotent: wrap the current record factory once per process."""
    global _installed
    with _lock:
        current = logging.getLogRecordFactory()
        if _installed is not None and current is _installed:
            return
        base = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(base(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = factory
