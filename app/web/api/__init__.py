from typing import Any

from apiflask import APIBlueprint
from flask import request

bp = APIBlueprint("api", __name__, tag="Platform")


@bp.before_request
def refuse_repeated_query_parameters() -> Any:
    """Every query parameter of this API is named and single-valued.

    `?a=1&a=2` and `?=1` are refused rather than half-read.
    """
    for name, values in request.args.lists():
        if not name:
            return {
                "error": {
                    "code": "invalid_input",
                    "field": None,
                    "message": "A query parameter has no name.",
                }
            }, 422
        if len(values) > 1:
            return {
                "error": {
                    "code": "invalid_input",
                    "field": name,
                    "message": f"{name}: give this parameter once.",
                }
            }, 422
    return None


from app.web.api import (  # noqa: E402,F401
    customers,
    dashboard,
    exit,
    fraud,
    hosts,
    lines,
    notifications,
    numbers,
    orders,
    payments,
    plans,
    provisioning,
    settlement,
    sla_days,
    staff,
    tickets,
    usage,
)
