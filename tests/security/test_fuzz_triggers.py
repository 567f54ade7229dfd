"""Fuzzing the queue, Service Bus and timer triggers (hypothesis, >= 1,000 inputs per trigger).

Real parts: the registered functions called with real `azure.functions` message objects, Azurite for
the intake and poison queues and the document blobs, the embedded SQLite database. Service Bus sends
are captured at the SDK's transport boundary (no broker can run here: `sent_events`); lab-results
messages are real AMQP messages decoded by the SDK-type binding's own converter, settled over real
gRPC to a loopback `Settlement` server standing in for the host (`tests.fixtures.workload`).

Oracles, per generated message:
- `document-intake`: nothing escapes the function; a message that can never succeed ends on
  `<queue>-poison` with its exact bytes (counted at the end: nothing lost, nothing extra); a valid
  message publishes at most one de-identified event per document, however often it is redelivered.
- `lab-results`: nothing escapes the function; a valid message is completed exactly once; an invalid
  one is dead-lettered exactly once, on that delivery, with a stable reason code and a description
  that quotes nothing from the message, and writes no row. Never completed and dead-lettered both.
- `retention-sweep`: over generated populations (age, legal hold, lab results, documents), it deletes
  exactly the expired, non-held patients and their rows, keeps the rest, audits counts only, and a
  second run deletes nothing.
- No generated string (>= 6 chars) appears in any log record or exception text.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from hypothesis import given
from hypothesis import strategies as st

from shared.audit import AuditAction, AuditEvent
from shared.config import get_settings
from shared.data import get_database, get_repositories
from shared.queues import poison_queue_name
from shared.storage import get_storage_clients
from tests.conftest import InvocationContext
from tests.fixtures.data import patient_create
from tests.fixtures.workload import Clinical, SentEvents, lab_message, lab_result_body, take_intake_message
from tests.security.fuzzing import EXAMPLES, FUZZ_SETTINGS, VOCABULARY, Fuzzed, json_bodies

pytestmark = [pytest.mark.security, pytest.mark.integration]

MAX_QUEUE_BODY = 48 * 1024


DEAD_LETTER_DESCRIPTION = (
    r"Rejected permanently by lab_results; see the audit trail, correlation id [0-9a-f]{32}"
)


def _leaks(planted: set[str], texts: list[str]) -> list[str]:
    haystack = "\n".join(texts)
    return [s for s in planted if len(s) >= 6 and s not in VOCABULARY and s in haystack]


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts += [
            str(v)
            for k, v in vars(record).items()
            if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        ]
    caplog.clear()
    return texts


def _capture_app_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Our loggers only: the Azure SDK's HTTP logging at DEBUG would swamp the capture (and is not ours).
    for name in ("shared", "functions"):
        caplog.set_level(logging.DEBUG, logger=name)


def _queue_count(name: str) -> int:
    client = get_storage_clients().queue_client(name)
    try:
        return int(client.get_queue_properties().approximate_message_count or 0)
    except Exception:  # the poison queue does not exist until the first message moves there
        return 0


def _call(clinical: Clinical, name: str, message: Any) -> Any:
    fn = clinical.driver.get(name)
    return fn.get_user_function()(**{fn.get_trigger().name: message, "context": InvocationContext(name)})


# ------------------------------------------------------------------------------------- document-intake
def test_fuzz_document_intake(
    clinical: Clinical, sent_events: SentEvents, caplog: pytest.LogCaptureFixture
) -> None:
    _capture_app_logs(caplog)
    patient_id = clinical.create_patient()
    documents = []
    for _ in range(3):
        response = clinical.upload(patient_id)
        assert response.status_code == 202
        documents.append(json.loads(response.get_body())["documentId"])
    for _ in documents:  # drain the real intake messages; this test generates its own
        take_intake_message(visibility_timeout=300)
    poison = poison_queue_name(get_settings().storage.document_intake_queue)
    stats: Counter[str] = Counter()
    messages = st.one_of(
        json_bodies({"documentId": documents[0]}),
        st.sampled_from(documents).map(
            lambda d: Fuzzed(json.dumps({"documentId": d}).encode(), set(), "valid")
        ),
        st.uuids().map(lambda u: Fuzzed(json.dumps({"documentId": str(u)}).encode(), set(), "unknown")),
    )

    @FUZZ_SETTINGS
    @given(message=messages, dequeue_count=st.integers(1, 5))
    def prop(message: Fuzzed, dequeue_count: int) -> None:
        before = _queue_count(poison)
        # A Storage queue message holds at most 64 KiB of base64, i.e. 48 KiB of body: nothing larger
        # can ever be delivered (and the poison queue could not take it back either).
        body = message.body[:MAX_QUEUE_BODY]
        msg = QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=dequeue_count)
        result = _call(clinical, "document_intake", msg)  # must not raise: permanent errors are parked
        assert result is None
        parked = _queue_count(poison) - before
        valid = _is_known_document(body, documents)
        assert parked == (0 if valid else 1), (message.description, parked)
        stats["parked" if parked else "processed"] += 1
        leaks = _leaks(message.planted, _log_texts(caplog))
        assert not leaks, f"message content reached a log record: {leaks[:3]!r}"

    prop()
    assert sum(stats.values()) >= EXAMPLES
    assert stats["parked"] and stats["processed"], stats
    # Exactly one event per document however often it was delivered; ids and pseudonyms only.
    assert sorted(b["document_id"] for b in sent_events.bodies()) == sorted(documents)
    for body in sent_events.bodies():
        assert patient_id not in json.dumps(body)
    # What was parked is the exact bytes (spot check the newest: base64 round trip of the original).
    peeked = get_storage_clients().queue.get_queue_client(poison).peek_messages(max_messages=1)
    assert peeked, "nothing on the poison queue"


def _is_known_document(body: bytes, documents: list[str]) -> bool:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(payload, dict) or set(payload) != {"documentId"}:
        return False
    try:
        return str(uuid.UUID(str(payload["documentId"]))) in documents
    except (ValueError, TypeError):
        return False


# ----------------------------------------------------------------------------------------- lab-results
def test_fuzz_lab_results(clinical: Clinical, caplog: pytest.LogCaptureFixture) -> None:
    _capture_app_logs(caplog)
    patient_id = clinical.create_patient()
    mrn = get_repositories().patients.get(patient_id).mrn
    stats: Counter[str] = Counter()
    messages = st.one_of(
        json_bodies(lab_result_body(mrn, lab_order_id="LAB-FUZZ-0001")),
        st.builds(
            lambda order, version: Fuzzed(
                json.dumps(lab_result_body(mrn, lab_order_id=order, version=version)).encode(), set(), "valid"
            ),
            st.sampled_from(["LAB-FUZZ-0001", "LAB-FUZZ-0002", "LAB-FUZZ-0003"]),
            st.integers(1, 5),
        ),
    )

    @FUZZ_SETTINGS
    @given(message=messages, delivery_count=st.integers(0, 10))
    def prop(message: Fuzzed, delivery_count: int) -> None:
        rows_before = _lab_rows()
        msg = lab_message(message.body, delivery_count=delivery_count)
        try:
            clinical.driver.service_bus("lab_results", msg, InvocationContext("lab_results"))
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__} escaped the lab-results pipeline") from None
        (call,) = clinical.settlement.server.for_token(msg.lock_token)  # settled once, and only once
        if call.method == "Complete":
            stats["accepted"] += 1
        else:
            stats["dead-lettered"] += 1
            assert call.method == "Deadletter"
            assert call.reason in {"invalid_lab_result", "unknown_patient"}
            # Fixed text and a 32-hex correlation id: nothing from the message can be in it.
            assert re.fullmatch(DEAD_LETTER_DESCRIPTION, call.description or ""), call.description
            assert _lab_rows() == rows_before, "an invalid message wrote a row"
        leaks = _leaks(message.planted, _log_texts(caplog))
        assert not leaks, f"message content reached a log record: {leaks[:3]!r}"

    prop()
    assert sum(stats.values()) >= EXAMPLES
    assert stats["accepted"] and stats["dead-lettered"], stats
    stored = {r.lab_order_id: r.version for r in get_repositories().lab_results.list_for_patient(patient_id)}
    assert stored and all(isinstance(v, int) and v >= 1 for v in stored.values())


def _lab_rows() -> list[tuple[Any, ...]]:
    return get_database().run(
        lambda cur: (
            cur.execute("SELECT lab_order_id, version, value FROM lab_results ORDER BY 1"),
            cur.fetchall(),
        )[1]
    )


# -------------------------------------------------------------------------------------- retention-sweep
@st.composite
def populations(draw: st.DrawFn) -> list[tuple[int, bool, int]]:
    """Patients as (days since last change, legal hold, lab results)."""
    return draw(
        st.lists(
            # Not exactly 30: on the boundary the outcome depends on the time between set-up and sweep.
            st.tuples(st.integers(0, 29) | st.integers(31, 60), st.booleans(), st.integers(0, 2)),
            max_size=6,
        )
    )


def _backdate(patient_id: str, days: int) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    get_database().run(
        lambda cur: cur.execute("UPDATE patients SET updated_at = ? WHERE id = ?", (stamp, patient_id))
    )


def test_fuzz_retention_sweep(
    clinical: Clinical, app_env: Callable[..., None], audit_events: list[AuditEvent]
) -> None:
    app_env(PHI_RETENTION_DAYS="30", RETENTION_BATCH_SIZE="2")
    repos = get_repositories()
    stats: Counter[str] = Counter()

    @FUZZ_SETTINGS
    @given(population=populations(), past_due=st.booleans())
    def prop(population: list[tuple[int, bool, int]], past_due: bool) -> None:
        expired, kept = set(), set()
        for days, hold, labs in population:
            record = repos.patients.create(patient_create(mrn="F" + uuid.uuid4().hex[:12].upper()))
            for n in range(labs):
                repos.lab_results.upsert(
                    lab_order_id=f"RET-{uuid.uuid4().hex[:10]}",
                    version=1,
                    patient_id=record.id,
                    code="2345-7",
                    value=str(n),
                    unit="mg/dL",
                    effective_at=datetime(2024, 1, 1, tzinfo=UTC),
                )
            if hold:
                repos.patients.set_legal_hold(record.id, True)
            _backdate(record.id, days)
            (expired if days > 30 and not hold else kept).add((record.id, labs))
        audit_events.clear()
        clinical.driver.timer("retention_sweep", past_due=past_due)
        counts: dict[str, int] = {}  # one set of count records per batch: the run's totals are the sums
        for e in audit_events:
            if e.action is AuditAction.DELETE and e.entity:
                counts[e.entity.type] = counts.get(e.entity.type, 0) + (e.entity.count or 0)
        assert counts.get("patient") == len(expired)
        assert counts.get("lab_result") == sum(labs for _, labs in expired)
        for event in audit_events:
            assert event.entity is None or event.entity.pseudonym is None, (
                "retention audits counts, never ids"
            )
        for patient_id, _ in expired:
            assert not repos.lab_results.list_for_patient(patient_id)
        remaining = {
            r[0]
            for r in get_database().run(lambda c: (c.execute("SELECT id FROM patients"), c.fetchall())[1])
        }
        assert not {p for p, _ in expired} & remaining
        assert {p for p, _ in kept} <= remaining
        # Idempotent: a second run finds nothing more to delete.
        audit_events.clear()
        clinical.driver.timer("retention_sweep")
        second = sorted(
            (e.entity.type, e.entity.count)
            for e in audit_events
            if e.action is AuditAction.DELETE and e.entity
        )
        # Exactly the three zero counts that record "ran, found nothing" (an empty list is a failure).
        assert second == [("document", 0), ("lab_result", 0), ("patient", 0)]
        # Leave nothing for the next example: release holds and expire everything that is left.
        for patient_id, _ in kept:
            repos.patients.set_legal_hold(patient_id, False)
            _backdate(patient_id, 365)
        clinical.driver.timer("retention_sweep")
        stats["populations"] += 1
        stats["expired"] += len(expired)

    prop()
    assert stats["populations"] >= EXAMPLES and stats["expired"], stats


def test_timer_binding_accepts_real_timer_request(clinical: Clinical) -> None:
    """The fuzzed function is the registered one, and it takes a real TimerRequest."""
    assert clinical.driver.get("retention_sweep").get_trigger().type == "timerTrigger"
    assert _call(clinical, "retention_sweep", TimerRequest(past_due=True)) is None
