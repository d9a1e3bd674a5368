"""Fault rules: scripted misbehaviour for the requests a test is about to make.

A rule selects requests by method and path regex and describes what goes
wrong. Rules are consulted in the order they were added. A matching rule that
is still in its "skip" phase lets the request go on to the next rules; the
first matching rule with count left is applied and the search stops.

The effects apply in this order: latency_ms holds the answer until that
long after the request arrived; reset drops the
connection; status, body or malformed replace the vendor's answer (otherwise
the real handler answers); headers override response headers; short_body,
idle_ms and drip_ms change how the answer is delivered.
"""

import re
import threading

# Every field a rule may carry, with the type its value must have. Unknown
# fields are refused so that a typo in a test fails loudly instead of
# silently injecting nothing.
FIELDS = {
    "method": str, "path": str, "count": int, "skip": int,
    "latency_ms": int, "status": int, "headers": dict, "body": str,
    "reset": bool, "malformed": bool, "short_body": bool,
    "drip_ms": int, "idle_ms": int,
}

JSON_TYPES = {str: "string", int: "integer", bool: "boolean", dict: "object"}

# What "malformed" sends: the opening of a plausible vendor answer, cut off.
MALFORMED_BODY = '{"data": {"attributes": '


def validate(rule):
    """Return an error message for a bad rule, or None when it is usable."""
    if not isinstance(rule, dict):
        return "a fault rule must be a JSON object"
    for name, value in rule.items():
        kind = FIELDS.get(name)
        if kind is None:
            return f"unknown fault field: {name}"
        # bool is a subclass of int: check it apart to refuse "count": true.
        if (isinstance(value, bool) != (kind is bool)
                or not isinstance(value, kind)):
            return f"fault field {name} must be a JSON {JSON_TYPES[kind]}"
        if kind is int and value < 0:
            return f"fault field {name} must not be negative"
    if "path" not in rule:
        return "a fault rule needs a path regex"
    try:
        re.compile(rule["path"])
    except re.error as exc:
        return f"bad path regex: {exc}"
    if not all(isinstance(v, str) for v in rule.get("headers", {}).values()):
        return "fault header values must be strings"
    return None


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, rule):
        with self._lock:
            self._rules.append({
                "rule": rule,
                "regex": re.compile(rule["path"]),
                "skip_left": rule.get("skip", 0),
                "count_left": rule.get("count"),  # None means unlimited.
                "applied": 0,
            })
            return len(self._rules) - 1

    def pick(self, method, path):
        """Find the rule for this request and use up one of its count.

        Returns (index, rule) or (None, None). Matching and counting happen
        under one lock so that concurrent requests never share a count.
        """
        with self._lock:
            for index, entry in enumerate(self._rules):
                rule = entry["rule"]
                if "method" in rule and rule["method"].upper() != method:
                    continue
                if not entry["regex"].search(path) or entry["count_left"] == 0:
                    continue
                if entry["skip_left"] > 0:
                    entry["skip_left"] -= 1
                    continue
                if entry["count_left"] is not None:
                    entry["count_left"] -= 1
                entry["applied"] += 1
                return index, rule
        return None, None

    def list(self):
        with self._lock:
            return [dict(e["rule"], index=i, applied=e["applied"])
                    for i, e in enumerate(self._rules)]

    def clear(self):
        with self._lock:
            self._rules.clear()
