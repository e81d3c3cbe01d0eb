"""Schemathesis against the generated OpenAPI document, on both backends.

Every operation is called with generated valid and invalid input using an
admin key; any 500, undocumented status, or response that breaks the
documented schema fails the suite.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import make_api_key

schema = schemathesis.pytest.from_fixture("api_schema")

# Operations whose schema-valid input can still break a business rule that JSON Schema
# cannot state; they answer 422 naming the field, which the positive-data check would
# count as a failure. Every other check still runs on them.
RULES_BEYOND_THE_SCHEMA = {
    # "email" format admits special-use and dotless domains such as noreply@localhost.
    "POST /api/v1/staff": "deliverable e-mail domain",
    # provisioning "http" needs a provisioning_url: a rule across two fields.
    "PUT /api/v1/hosts/{code}": "http provisioning needs a URL",
    # first/last must be valid numbers of one plan, in order, not overlapping stock.
    "POST /api/v1/number-blocks": "number range rules",
    # the CSV text's rows are validated as a file (Luhn, lengths, duplicates).
    "POST /api/v1/sims/import": "file content rules",
    # names need a locale; the host must be known (an unknown one is 404).
    "PUT /api/v1/plans/{code}": "plan terms rules",
    # names need a locale.
    "PUT /api/v1/addons/{code}": "add-on names rules",
    # a negative margin needs an override with a reason; only drafts publish.
    "POST /api/v1/plans/versions/{plan_id}/publish": "publishing rules",
    # a voucher batch must expire after now, which moves.
    "POST /api/v1/voucher-batches": "expiry in the future",
    # the uploaded usage file is read as a whole (UTF-8, the host's header, rows).
    "POST /api/v1/usage/imports": "file content rules",
    # the uploaded invoice is read line by line against the settlement's columns.
    "POST /api/v1/settlement/reconciliations": "file content rules",
    # a ticket's resolution target cannot be shorter than its first-response target.
    "PUT /api/v1/sla-targets/{category}/{priority}": "resolution not before first response",
    # the files are typed by their content and must agree with their names.
    "POST /api/v1/tickets/{ref}/messages/upload": "file content rules",
    # a make-up working day is a Saturday or Sunday, and the calendar covers 2000 to 2099.
    "PUT /api/v1/sla-holidays/{day}": "a workday on a weekend day of a covered year",
    # the holidays library knows some countries' holidays from a later year than 2000 only.
    "POST /api/v1/sla-holidays/load": "a year the library knows for the country",
    # the regulator's escalation date cannot be in the future, which moves.
    "POST /api/v1/tickets/{ref}/escalation": "date not in the future",
    # tickets go only to active admin or care staff.
    "POST /api/v1/ticket-assignments": "the assignee may work tickets",
    # the market exit's steps depend on its state and the clock: the notice period runs
    # from now, announcing needs a plan, executing waits for the exit instant, a choice
    # needs an announced exit and a line, and nothing is cancelled once executed.
    "POST /api/v1/exit/plan": "the notice period from now",
    "POST /api/v1/exit/announce": "an exit must be planned",
    "POST /api/v1/exit/choices": "an announced exit and a known line",
    "POST /api/v1/exit/execute": "not before the exit instant",
    "POST /api/v1/exit/cancel": "an exit in progress",
    # the file must have been written by an exit.
    "GET /api/v1/exit/files/{name}": "the file must exist",
    # every threshold of the rule, each within its own bounds; no suspension by vouchers.
    "PUT /api/v1/fraud-rules/{rule}": "the rule's own thresholds",
}


@pytest.fixture
def api_schema(app, db):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=100,
    # The same examples every run, so CI's verdict is reproducible; set
    # SCHEMATHESIS_EXPLORE=1 to draw fresh examples while hunting for bugs.
    derandomize=not os.environ.get("SCHEMATHESIS_EXPLORE"),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_document(case, session):
    # A fresh key for every example: the fuzzer revokes keys by id (and all examples
    # share one database), so a single key would soon be revoked and every later
    # operation would only ever see 401.
    _key, admin_token = make_api_key(session, role="admin")
    session.commit()
    excluded = []
    if case.operation.label in RULES_BEYOND_THE_SCHEMA:
        excluded.append(positive_data_acceptance)
    # A case that leaves the header out on purpose (a negative case) keeps it out;
    # adding it back would turn a schema-violating request into a valid one.
    headers = (
        {"Authorization": f"Bearer {admin_token}"}
        if "Authorization" in (case.headers or {})
        else {}
    )
    case.call_and_validate(headers=headers, excluded_checks=excluded)
