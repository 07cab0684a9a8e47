"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

* A check: a 5xx answer must be one the document names with its exact status for that operation
  (a documented `503 keyring_unavailable` is an answer; an undocumented 500 is a finding).
* The settings routes are kept meaningful and on this machine:
  - `PUT /api/v1/config` keeps the listener where it is (port, address, command segments), the store
    where it is, and the simulator as the phone system; every notification rule points at the local
    sink. Everything else in the body is left as generated.
  - `POST /api/v1/notifications/test` sends its rule to the local sink, whatever URL was generated.
  The bridge would otherwise fetch whatever URL the fuzzer wrote (it does not refuse remote URLs:
  a CRM is usually remote).
"""

import os

import schemathesis

LISTENER = {
    "port": int(os.environ["CB_PORT"]),
    "bind": "127.0.0.1",
    "make": "make",
    "answer": "answer",
    "end": "end",
}
SINK = os.environ["CB_SINK_URL"]


def _documented_statuses(case):
    return {str(status) for status in case.operation.definition.raw.get("responses", {})}


@schemathesis.check
def no_undocumented_server_error(ctx, response, case):
    """A 5xx must be documented for the operation with its exact status."""
    status = response.status_code
    if status >= 500 and str(status) not in _documented_statuses(case):
        raise AssertionError(f"{case.method} {case.path} answered {status}, a server error the document does not name for it")


def _pin_rule(rule):
    if isinstance(rule, dict):
        rule["url"] = SINK


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.method.upper(), case.operation.path
    body = case.body
    if method == "PUT" and path == "/api/v1/config" and isinstance(body, dict):
        body["listener"] = dict(LISTENER)
        store = body.get("store")
        if isinstance(store, dict):
            store.pop("path", None)
        provider = body.get("provider")
        if isinstance(provider, dict):
            provider["kind"] = "simulator"
        rules = body.get("notification")
        if isinstance(rules, list):
            for rule in rules:
                _pin_rule(rule)
    elif method == "POST" and path == "/api/v1/notifications/test" and isinstance(body, dict):
        _pin_rule(body.get("rule"))
