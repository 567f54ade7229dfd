"""Every log record is redacted at creation, so handlers we do not own (the Functions worker forwards
records to the host) never see PHI. A plain `logging.Handler` with a standard formatter stands in for the
worker's handler: the worker is not installable here."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from shared.telemetry.log_records import install_redacting_record_factory

SSN = "123-45-6789"
EMAIL = "jane.canary@example.org"
NOTE = "Patient Jane Canary reports chest pain"


@pytest.fixture
def foreign_handler() -> Iterator[io.StringIO]:
    """A handler on the root logger that formats everything, like the worker's forwarding handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved_level, saved_factory = root.level, logging.getLogRecordFactory()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(saved_level)
    logging.setLogRecordFactory(saved_factory)


def _log_phi() -> None:
    sdk_logger = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    sdk_logger.warning("Request URL: %s headers=%s", f"https://x/patients?ssn={SSN}", {"email": EMAIL})
    try:
        raise ValueError(NOTE)
    except ValueError:
        logging.getLogger("functions.patients").exception("lookup failed")


def test_control_without_the_factory_a_foreign_handler_leaks(foreign_handler: io.StringIO) -> None:
    logging.setLogRecordFactory(logging.LogRecord)
    _log_phi()
    text = foreign_handler.getvalue()
    assert SSN in text and NOTE in text  # proves the check below can fail


def test_foreign_handlers_only_see_redacted_records(foreign_handler: io.StringIO) -> None:
    logging.setLogRecordFactory(logging.LogRecord)
    install_redacting_record_factory()
    _log_phi()
    text = foreign_handler.getvalue()
    for canary in (SSN, EMAIL, NOTE, "Jane Canary"):
        assert canary not in text
    assert "lookup failed" in text  # literal templates survive
    assert "ValueError" in text  # the exception type survives, its message does not


def test_install_is_idempotent(foreign_handler: io.StringIO) -> None:
    logging.setLogRecordFactory(logging.LogRecord)
    install_redacting_record_factory()
    first = logging.getLogRecordFactory()
    install_redacting_record_factory()
    assert logging.getLogRecordFactory() is first
