"""Log messages are literals: the one PHI path the scrubber cannot see is a variable used as a message.

`RedactingLogHandler` redacts string *arguments* by type, and ruff's G rules forbid f-strings,
`.format` and concatenation in log calls. What is left is `logger.info(some_variable)`, whose content
only the pattern net would see; this test forbids it in app code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
_LOGGER_NAMES = {"logger", "log", "_logger", "_log", "logging", "LOGGER"}

pytestmark = pytest.mark.security


def _offending_calls(source: str) -> list[int]:
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if node.func.attr not in _LEVELS or not (isinstance(target, ast.Name) and target.id in _LOGGER_NAMES):
            continue
        args = node.args[1:] if node.func.attr == "log" else node.args
        message = args[0] if args else None
        if not (isinstance(message, ast.Constant) and isinstance(message.value, str)):
            lines.append(node.lineno)
    return lines


def test_the_checker_catches_a_variable_message() -> None:
    assert _offending_calls("logger.info(note)\nlogger.info('ok %s', x)\nlogging.log(20, msg)\n") == [1, 3]


def test_app_code_logs_only_literal_messages() -> None:
    files = [ROOT / "function_app.py", *(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in files
        if (lines := _offending_calls(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"log calls with a non-literal message: {offenders}"
