"""The one scrubber: telemetry, error responses, dead-letter reasons and audit records all use it.

Two layers, in this order:
1. **Allow-list.** Attribute keys in `SAFE_ATTRIBUTE_KEYS` are structural (method, route template,
   status code, function name, ids, durations, error codes) and pass unchanged. Every other key keeps
   its name but loses its value (`REDACTED`); sensitive header keys are dropped altogether.
2. **Pattern net** (`scrub_text`) for free text that must be kept (log templates, span names, status
   descriptions, stack frames): SSN, MRN formats, phone, email, dates, ZIP+4, IP addresses, street
   addresses, bearer tokens/JWTs, sensitive headers, URL query strings and values of known PHI fields
   (`name=...`, `"dob": ...`). It is a net, not a guarantee: free text such as clinical notes has no
   pattern, which is why values are redacted by *type* before text ever reaches the net (see
   `scrub_log_message`) and why ruff's G rules forbid f-strings in log calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
_MAX_VALUE = 512  # allow-listed values are structural; anything longer is not what the key promises

# Keys whose values are structural by definition. Anything else is redacted.
SAFE_ATTRIBUTE_KEYS: frozenset[str] = frozenset(
    {
        # HTTP (current and legacy semantic conventions); URLs are handled by `_URL_KEYS`.
        "http.request.method",
        "http.method",
        "http.route",
        "http.response.status_code",
        "http.status_code",
        "http.request.body.size",
        "http.response.body.size",
        "http.request.header.content-type",
        "http.request.header.content-length",
        "url.scheme",
        "server.address",
        "server.port",
        "network.protocol.version",
        # Functions / FaaS
        "faas.name",
        "faas.trigger",
        "faas.invocation_id",
        "faas.coldstart",
        "faas.max_retries",
        "cloud.provider",
        "cloud.platform",
        # Messaging (names of queues/topics are configuration, never payload)
        "messaging.system",
        "messaging.destination.name",
        "messaging.operation",
        "messaging.operation.type",
        "messaging.message.delivery_count",
        # Trace correlation and timing
        "trace_id",
        "span_id",
        "trace.id",
        "span.id",
        "correlation_id",
        "duration",
        "duration_ms",
        "db.system",
        "db.operation",
        "db.operation.name",
        # Errors: stable codes and exception *types* only
        "error.type",
        "error.code",
        "app.error.code",
        "app.dependency",
        "exception.type",
        "exception.escaped",
        "otel.status_code",
        # Log record code location (code is not data)
        "code.file.path",
        "code.function.name",
        "code.line.number",
        "code.filepath",
        "code.function",
        "code.lineno",
        "thread.name",
        "thread.id",
        # Exporter routing markers
        "microsoft.custom_event.name",
        "event.name",
        # App counters (counts, never identifiers)
        "app.count",
        "app.outcome",
        "app.operation",
    }
)
# Audit attributes are built by `shared.audit` from PHI-free fields (pseudonyms, workforce oids, codes).
SAFE_ATTRIBUTE_PREFIXES: tuple[str, ...] = ("audit.",)

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-functions-key",
        "ocp-apim-subscription-key",
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-ms-client-principal-idp",
        "x-ms-token-aad-access-token",
        "x-ms-token-aad-id-token",
    }
)
_URL_KEYS = frozenset({"url.full", "http.url", "url.path", "http.target", "url.original"})
_STACK_KEY = "exception.stacktrace"
_DROPPED_KEYS = frozenset({"exception.message", "url.query"})

_HEADER_NAMES = "|".join(
    sorted((re.escape(h) for h in SENSITIVE_HEADERS), key=len, reverse=True)  # longest first
)
_KNOWN_FIELDS = (
    r"(?:patient|first|last|given|family|full|display|middle|maiden|sur|user)[ _.-]?name|name|given|family"
    r"|patient|ssn|social[ _.-]?security(?:[ _.-]?number)?|dob|date[ _.-]?of[ _.-]?birth|birth[ _.-]?date"
    r"|mrn|medical[ _.-]?record(?:[ _.-]?number)?|e-?mail|phone|mobile|telephone|address|street|city|zip"
    r"|postal[ _.-]?code|member[ _.-]?id|subscriber[ _.-]?id|policy[ _.-]?(?:number|id)|insurance[ _.-]?id"
    r"|notes?|comments?|diagnosis|password|passwd|secret|token|api[ _.-]?key|sig"
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"

# Every rule that needs a digit, as one alternation (one pass instead of eleven). Longest forms first.
_DIGIT_FORMS = (
    # street address: "12 Elm Street"
    r"(?i:\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,4}(?:st|street|ave|avenue|rd|road|blvd|boulevard|ln|lane|dr|drive"
    r"|ct|court|way|pl|place|ter|terrace|cir|circle|pkwy|parkway|hwy|highway)\b\.?)",
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?\b",  # ISO date/time
    rf"(?i:\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b)",  # March 7, 1984
    rf"(?i:\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\s+\d{{4}}\b)",  # 7 March 1984
    r"(?i:\b(?:MRN|MR|MED)[-#:\s]*[A-Z0-9]*\d[A-Z0-9-]*\b)",  # MRN with a prefix
    r"\b\d{3}[- .]\d{2}[- .]\d{4}\b",  # SSN
    r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b",  # phone
    r"\b\d{5}-\d{4}\b",  # ZIP+4
    r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",  # US / EU dates
    r"\b(?:\d{1,3}\.){3}\d{1,3}\b",  # IPv4
    r"\b[A-Z]{1,4}-?\d{6,12}\b",  # MRN / insurance member-id style
    r"\b\d{7,}\b",  # long digit runs: MRNs, member ids, account numbers
)
_DIGIT_RULE = re.compile("|".join(_DIGIT_FORMS))
# Every form above has three digits in a row, a digit-separator-digit, or is a street address. Text
# without any of these ("took 12 ms") skips the expensive alternation.
_DIGIT_CANDIDATE = re.compile(
    r"\d{3}|\d[-/.:]\d|(?i:\d\s+[a-z][a-z ]*\b(?:st|street|ave|avenue|rd|road|blvd|boulevard|ln|lane|dr|drive"
    r"|ct|court|way|pl|place|ter|terrace|cir|circle|pkwy|parkway|hwy|highway)\b)"
)

# Order matters: structured forms first (so their keys survive), then the value patterns. Each rule
# names a cheap precondition so most short, clean strings skip most regexes (see the benchmark).
_VALUE_END = r"(?=\s+[\w.-]+\s*[:=]|[\r\n,;&|}\]]|$)"
_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(rf"(?i)['\"]?\b(?:{_HEADER_NAMES})\b['\"]?\s*[:=]\s*(?:'[^']*'|\"[^\"]*\"|[^\r\n,;]*)"),
        "[header removed]",
        "kv",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer " + REDACTED, "bearer"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED, "jwt"),
    # A query string runs to the closing quote or end of line, spaces included: logged URLs are not
    # always encoded, and over-redacting prose after a URL is the safe failure.
    (re.compile(r"(?i)\b(?:https?|wss?|ftp)://[^\s?#'\"<>]*(?:[?#][^'\"<>\r\n]*)?"), "", "url"),
    (
        re.compile(
            rf"(?i)(\b(?:{_KNOWN_FIELDS})\b['\"]?\s*[:=]\s*)(\[redacted\]|\"[^\"]*\"|'[^']*'|.+?{_VALUE_END})"
        ),
        r"\1" + REDACTED,
        "kv",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), REDACTED, "@"),
    (_DIGIT_RULE, REDACTED, "digit"),
    (
        re.compile(
            r"(?i)(?<![\w:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
            r"|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?)(?![\w:])"
        ),
        REDACTED,
        "colon",
    ),  # IPv6 (full or compressed)
    (
        re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?"),
        REDACTED,
        "title",
    ),
)
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\b")


def _triggers(text: str) -> set[str]:
    found: set[str] = set()
    if ":" in text or "=" in text:
        found.add("kv")
        if ":" in text:
            found.add("colon")
            if "://" in text:
                found.add("url")
    if "@" in text:
        found.add("@")
    if _DIGIT_CANDIDATE.search(text):
        found.add("digit")
    if "eyJ" in text:
        found.add("jwt")
    lowered = text.lower()
    if "bearer" in lowered:
        found.add("bearer")
    if _TITLE.search(text):
        found.add("title")
    return found


def scrub_url(url: str) -> str:
    """Keep scheme, host and path; drop user info, query string and fragment; scrub the path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = _scrub_plain(parts.path)
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _scrub_url_match(match: re.Match[str]) -> str:
    return scrub_url(match.group(0))


def _apply(text: str, urls: bool) -> str:
    triggers = _triggers(text)
    if not triggers:
        return text
    for pattern, replacement, trigger in _RULES:
        if trigger not in triggers:
            continue
        if trigger == "url":
            if urls:
                text = pattern.sub(_scrub_url_match, text)
        else:
            text = pattern.sub(replacement, text)
    return text


def _scrub_plain(text: str) -> str:
    return _apply(text, urls=False)


def scrub_text(text: str) -> str:
    """Pattern-scrub free text. Idempotent: scrubbing scrubbed text changes nothing."""
    if not text:
        return text
    return _apply(text, urls=True)


AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]


def is_safe_key(key: str) -> bool:
    return key in SAFE_ATTRIBUTE_KEYS or key.startswith(SAFE_ATTRIBUTE_PREFIXES)


def _is_sensitive_header_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.startswith(("http.request.header.", "http.response.header.")):
        return lowered.rsplit(".", 1)[-1] in SENSITIVE_HEADERS
    return lowered in SENSITIVE_HEADERS


def _safe_scalar(value: object) -> AttributeValue:
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE else value[:_MAX_VALUE]
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [str(v)[:_MAX_VALUE] for v in value]  # homogeneous, as OTel requires
    return REDACTED


def scrub_attribute(key: str, value: object) -> AttributeValue | None:
    """The value to keep for `key`, or None to drop the key entirely."""
    if is_safe_key(key):
        return _safe_scalar(value)
    if key in _DROPPED_KEYS or _is_sensitive_header_key(key):
        return None
    if key in _URL_KEYS and isinstance(value, str):
        return scrub_url(value) if "://" in value else _scrub_plain(value.split("?", 1)[0])
    if key == _STACK_KEY and isinstance(value, str):
        return scrub_stacktrace_text(value)
    if isinstance(value, bool):
        return value  # one bit carries no identifier
    return REDACTED


_SCALARS = frozenset({str, int, float, bool})


def scrub_attributes(attributes: Mapping[str, object] | None) -> dict[str, AttributeValue]:
    """Allow-listed keys pass, sensitive headers and exception messages are dropped, the rest redacted."""
    if not attributes:
        return {}
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        # Fast path for the common case (allow-listed scalar); the benchmark tracks this loop.
        if key in SAFE_ATTRIBUTE_KEYS and type(value) in _SCALARS:
            out[key] = _safe_scalar(value)
            continue
        kept = scrub_attribute(key, value)
        if kept is not None:
            out[key] = kept
    return out


def scrub_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers for diagnostics: sensitive ones removed, values of the rest pattern-scrubbed."""
    return {k: scrub_text(v) for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}


_FRAME_LINE = re.compile(r'^  File "[^"\r\n]*", line \d+, in [\w<>.]+$')
_REASON = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


def exception_type_name(exc: BaseException | type[BaseException]) -> SafeStr:
    cls = exc if isinstance(exc, type) else type(exc)
    module = cls.__module__
    return safe(cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}")


def safe_stacktrace(exc_type: type[BaseException] | None, tb: TracebackType | None) -> str:
    """Frames (file, line, function) and the exception type. Never the message or local values."""
    import traceback

    frames = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in traceback.extract_tb(tb)]
    kind = exception_type_name(exc_type) if exc_type is not None else "Exception"
    return scrub_text("\n".join(["Traceback (most recent call last):", *frames, kind]))


def scrub_stacktrace_text(stack: str) -> str:
    """Keep only well-formed frame lines of a formatted traceback; messages and source lines go."""
    frames = [line for line in stack.splitlines() if _FRAME_LINE.match(line)]
    return scrub_text("\n".join(["Traceback (most recent call last):", *frames]))


def safe_status_description(description: str | None) -> str | None:
    """`ValueError: <message>` (what OTel records on exceptions) becomes `ValueError`."""
    if not description:
        return description
    head, sep, _ = description.partition(":")
    if sep and re.fullmatch(r"[A-Za-z_][\w.]*", head):
        return head
    return scrub_text(description)


class SafeStr(str):
    """A code-chosen string (a type name, a function name, a setting name) that may be logged as an arg."""

    __slots__ = ()


def safe(value: str) -> SafeStr:
    """Mark a code-chosen string as loggable: `logger.warning("retry %s", safe(queue_name))`."""
    return SafeStr(value)


_HEX_ID = re.compile(
    r"^(?:[0-9a-f]{16,64}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def _safe_arg(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | SafeStr):
        return value
    if isinstance(value, str) and _HEX_ID.match(value):
        return value  # correlation / trace / invocation ids: random, never a person's data
    return REDACTED


def scrub_log_message(msg: object, args: object) -> str:
    """Format a log call with its arguments redacted by type, then pattern-scrub the result.

    Numbers, booleans, hex/uuid ids and `safe()` strings are interpolated; other strings and objects
    are not, because a `%s` argument is exactly where a name or a note ends up.
    """
    if not isinstance(msg, str):
        return f"{REDACTED} ({type(msg).__name__})"
    if args:
        safe: object
        if isinstance(args, Mapping):
            safe = {k: _safe_arg(v) for k, v in args.items()}
        elif isinstance(args, tuple):
            safe = tuple(_safe_arg(a) for a in args)
        else:
            safe = (_safe_arg(args),)
        try:
            msg = msg % safe
        except (TypeError, ValueError, KeyError):
            msg = msg + " " + REDACTED
    return scrub_text(msg)


def safe_reason(code: str) -> str:
    """A dead-letter / error reason: a stable lower-case code, or `invalid_message` if it is anything else."""
    return code if _REASON.fullmatch(code) else "invalid_message"
