"""Composition root: validate settings, build the one FunctionApp, register the blueprints.

Nothing else lives here. Importing this module fails fast, naming the setting, when configuration is
missing or still holds an unresolved Key Vault reference, so a broken deployment never serves traffic.
"""

from __future__ import annotations

import azure.functions as func

from functions import document_intake, documents, health, lab_results, patients, retention
from shared.audit import register_pseudonymizer
from shared.config import get_settings
from shared.data import get_pseudonymizer
from shared.http_route import add_observer
from shared.route_audit import TelemetryAuditObserver
from shared.telemetry import configure_telemetry

settings = get_settings()
configure_telemetry(settings)  # before anything logs: every signal goes through redaction
add_observer(TelemetryAuditObserver())  # PHI routes: invocation span + audit of every 401/403
register_pseudonymizer(get_pseudonymizer)  # audit records carry keyed pseudonyms, never entity ids

# Function keys are not the access control for PHI routes: every PHI route validates an Entra ID token
# itself, and the network only admits traffic from API Management (docs/authorization.md).
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(health.bp)
app.register_functions(patients.bp)
app.register_functions(documents.bp)
app.register_functions(document_intake.bp)
app.register_functions(lab_results.bp)
app.register_functions(retention.bp)
