"""Storage Queue sends for the workload: id-only work items, and moving a dead message to `<queue>-poison`.

- Bodies are JSON objects of ids only (`{"documentId": "<uuid>"}`): a queue message is not a place
  for PHI (it is visible to anyone with queue read access and in the poison queue for days).
- Messages are base64-encoded, as the Functions queue trigger expects (host.json
  `messageEncoding: base64`), so the host and these helpers read each other's messages.
- The poison queue name is the host's own convention (`<queue>-poison`), so operators find messages
  we moved there next to those the host moved after `maxDequeueCount` failures.
- Storage failures become `DependencyUnavailable("storage")` (503 for HTTP, a retry for triggers).
- Locally (Azurite connection string, Development only) a missing queue is created on first use; in
  Azure, infra creates the queues and the app has no right to.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

from shared.config import get_settings
from shared.errors import DependencyUnavailable
from shared.scrub import exception_type_name, safe, safe_reason
from shared.storage import get_storage_clients

logger = logging.getLogger(__name__)

POISON_SUFFIX = "-poison"


def poison_queue_name(queue: str) -> str:
    return f"{queue}{POISON_SUFFIX}"


def _with_queue[T](client: QueueClient, action: Callable[[QueueClient], T]) -> T:
    try:
        try:
            return action(client)
        except ResourceNotFoundError:
            if get_settings().storage.connection_string is None:
                raise  # Azure: a missing queue is a deployment fault, not something to paper over
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            return action(client)
    except AzureError as exc:
        logger.warning("Queue operation failed: %s", exception_type_name(exc))
        raise DependencyUnavailable("storage") from None


def send_json(queue: str, payload: Mapping[str, str]) -> str:
    """Enqueue a small JSON object of ids; returns the storage message id."""
    body = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True)
    sent = _with_queue(get_storage_clients().queue_client(queue), lambda q: q.send_message(body))
    return str(sent.id)


def move_to_poison(queue: str, body: bytes, message_id: str, reason: str) -> None:
    """Put `body` (the original bytes, unchanged) on `<queue>-poison` and log the PHI-free reason code.

    The caller then returns normally, so the host deletes the original: the message is kept exactly
    once, in the poison queue, with no pointless retries in between. Raises `DependencyUnavailable`
    when the poison queue cannot be written, so the host retries and nothing is lost.
    """
    # Binary policy: the bytes the host decoded from base64 go back exactly as they were.
    client = get_storage_clients().queue.get_queue_client(
        poison_queue_name(queue),
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
    )
    _with_queue(client, lambda q: q.send_message(body))
    logger.warning(
        "Queue message %s moved to %s: %s",
        message_id,  # not marked safe: the log scrubber keeps it only if it is a uuid/hex id
        safe(poison_queue_name(queue)),
        safe(safe_reason(reason)),
    )
