"""Shared pieces of the simulator: the request object, the route registry and
the vendor settings.

Vendor modules live in simlib/vendors/ and are imported once at start-up.
A vendor module registers its routes with the @route decorator and may define
a module-level reset() that POST /_sim/reset calls to forget vendor state:

    from simlib import route, state

    @route("GET", r"/api/v3/files/(?P<hash>[0-9a-fA-F]{64})")
    def file_report(req):
        if req.headers.get("x-apikey") != state.get("vt_api_key", "test-key"):
            return 401, {}, {"error": {"code": "WrongCredentialsError"}}
        return 200, {}, {"data": {"id": req.params["hash"]}}

A handler returns (status, headers, body). The body may be bytes, a str, None
or any JSON-serialisable object; objects are encoded as JSON and get a JSON
Content-Type unless the handler set one.
"""

import importlib
import json
import pkgutil
import re
import traceback
from urllib.parse import parse_qsl


class BadRequest(Exception):
    """Raised by handlers (or Request.json) to answer 400 with a JSON error."""


class Request:
    """One HTTP request as the handlers see it.

    headers is the server's message object, whose get() and `in` ignore case,
    so handlers can look up "X-Api-Key" or "x-apikey" alike. query maps each
    name to its last value; raw_query keeps the exact string for code that
    must sign or compare it byte for byte (SigV4 canonical requests).
    """

    def __init__(self, method, target, headers, body):
        self.method = method.upper()
        self.path, _, self.raw_query = target.partition("?")
        self.query = dict(parse_qsl(self.raw_query, keep_blank_values=True))
        self.headers = headers
        self.body = body
        self.params = {}

    def header_dict(self):
        """Headers as a dict with lower-cased names; repeats are joined."""
        out = {}
        for name, value in self.headers.items():
            name = name.lower()
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from None


def encode_body(headers, body):
    """Turn a handler's body into bytes, setting a Content-Type if missing."""
    has_type = any(k.lower() == "content-type" for k in headers)
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode("utf-8")
    if not has_type:
        headers["Content-Type"] = "application/json"
    return json.dumps(body).encode("utf-8")


class Registry:
    """An ordered table of (method, path regex, handler).

    The first route whose regex matches the whole path wins, so more specific
    routes must be registered before catch-alls. A path that matches only
    under other methods answers 405, as real APIs do, rather than 404.
    """

    def __init__(self):
        self.routes = []

    def route(self, method, pattern):
        """Decorator; method is "GET", a list like "GET,POST", or "ANY"."""
        methods = {m.strip().upper() for m in method.split(",")}
        regex = re.compile(pattern)

        def register(handler):
            self.routes.append((methods, regex, handler))
            return handler

        return register

    def dispatch(self, req):
        """Answer req with (status, headers, body bytes)."""
        allowed = set()
        for methods, regex, handler in self.routes:
            match = regex.fullmatch(req.path)
            if not match:
                continue
            if "ANY" not in methods and req.method not in methods:
                allowed |= methods
                continue
            req.params = match.groupdict()
            return finish(*self._call(handler, req))
        if allowed:
            return finish(405, {"Allow": ", ".join(sorted(allowed))},
                          {"error": "method not allowed", "path": req.path})
        return finish(404, {}, {"error": "no such route", "path": req.path})

    @staticmethod
    def _call(handler, req):
        try:
            return handler(req)
        except BadRequest as exc:
            return 400, {}, {"error": str(exc)}
        except Exception as exc:  # A simulator bug must show, not hang a test.
            traceback.print_exc()
            return 500, {}, {"error": "simulator handler failed",
                             "detail": repr(exc)}


def finish(status, headers, body):
    """Normalise a handler's answer to (status, headers, body bytes)."""
    headers = dict(headers or {})
    return status, headers, encode_body(headers, body)


vendor_routes = Registry()
route = vendor_routes.route
# Vendor settings posted by tests (API keys, rate limits...). A plain dict
# is enough: handlers only get and set single keys, which are atomic.
state = {}
_vendor_modules = []


def load_vendors():
    """Import every module in simlib/vendors so their routes register."""
    from simlib import vendors as package

    for name in sorted(i.name for i in pkgutil.iter_modules(package.__path__)):
        module = importlib.import_module(f"{package.__name__}.{name}")
        _vendor_modules.append(module)


def reset_vendors():
    """Call each vendor module's reset(), for POST /_sim/reset."""
    for module in _vendor_modules:
        hook = getattr(module, "reset", None)
        if hook:
            hook()
