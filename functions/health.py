"""Liveness. Anonymous by design, and says nothing about versions or dependencies."""

from __future__ import annotations

import azure.functions as func

from shared.problem import json_response

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})
