"""AWS, the shared part: SigV4 verification, credentials, the clock, error
envelopes, the call log and the query-protocol endpoint POST /.

The AWS services live in aws_securityhub.py (rest-json; its findings come
from aws_findings.py), aws_sts.py (query protocol) and aws_imds.py (EC2
instance metadata and container credentials; not signed). aws_sigv4.py
computes canonical requests and signatures.

One simulator URL serves every AWS service and region: tests point
AWS_ENDPOINT_URL_SECURITYHUB, AWS_ENDPOINT_URL_STS, ... at it. The route
tells rest-json services apart; POST / (query protocol: STS now, EC2 and IAM
later) is dispatched on the credential scope's service, or on the Version
parameter when the request is not signed, and then on Action. The region is
the one in the credential scope.

Verification (every signed route), in this order:

 1. An Authorization header must be present (presigned URLs are not
    supported): else MissingAuthenticationToken.
 2. It must parse as AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/
    aws4_request, SignedHeaders=..., Signature=...; X-Amz-Date must be
    present in basic ISO 8601 and "host" must be signed: else
    IncompleteSignature.
 3. The scope's date must be X-Amz-Date's date; X-Amz-Date must be within
    5 minutes of the simulator's clock; the terminator must be aws4_request;
    the service must be the route's; the region must look like a region
    (us-east-1, us-gov-west-1, ...): else the signature error.
 4. The access key must be known: else the "security token is invalid"
    error.
 5. A key issued with a session token needs X-Amz-Security-Token equal to
    it; a key issued without one must not carry one: else the same error.
    Whether the token was itself signed is recorded (token_signed), not
    enforced: AWS accepts a token added after signing (the suite's
    post-sts-header-after case).
 6. Temporary credentials must not have expired: else ExpiredToken.
 7. The signature must match: else the signature error, whose message
    carries the canonical request and string to sign the simulator computed
    (as AWS's does), for debugging a signer.

The errors, per protocol (status, code):

    kind            rest-json (Security Hub), then query (STS, IAM)
    missing         403 MissingAuthenticationTokenException
                    403 MissingAuthenticationToken
    incomplete      403 IncompleteSignatureException
                    400 IncompleteSignature
    unknown key     403 UnrecognizedClientException
                    403 InvalidClientTokenId
    bad token       403 UnrecognizedClientException
                    403 InvalidClientTokenId
    expired token   403 ExpiredTokenException
                    403 ExpiredToken
    signature, skew 403 InvalidSignatureException
                    403 SignatureDoesNotMatch

rest-json errors carry x-amzn-ErrorType "<Code>:http://internal.amazon.com/
coral/com.amazon.coral.service/" (clients strip what follows ":") and the
JSON body {"message": ...}. Query errors are <ErrorResponse><Error><Type>
Sender</Type><Code>..</Code><Message>..</Message></Error><RequestId>..
</RequestId></ErrorResponse>, text/xml. Verified in public bug reports and
AWS docs: UnrecognizedClientException and InvalidClientTokenId with "The
security token included in the request is invalid." (STS's 403 answer
quoted whole, headers included); "Signature expired: X is now earlier than
Y (Z - 5 min.)" and "Signature not yet current: X is still later than Y
(Z + 5 min.)" (InvalidSignatureException; STS answers it as
SignatureDoesNotMatch); the SignatureDoesNotMatch message; the credential
scope messages (IAM's SigV4 troubleshooting page). UNVERIFIED: the statuses
of the rest-json auth errors for Security Hub itself (403, as other
rest-json services answer), the Coral suffix of x-amzn-ErrorType, the
MissingAuthenticationToken and IncompleteSignature messages, ExpiredToken's
wording. EC2 (for a later module) answers in its own envelope; its auth
codes (AuthFailure 401, RequestExpired 400 for skew) are UNVERIFIED.

Settings (POST /_sim/state/NAME):

    aws_credentials     {"AKID": {"secret": "...", "token": "...",
                        "arn": "arn:aws:iam::123456789012:user/x"}, ...}:
                        the long-term keys known (token and arn optional).
                        Default {"AKIDSIMULATOR": {"secret":
                        "simulator-secret-key"}}, user arn:aws:iam::
                        123456789012:user/simulator. Setting it replaces
                        the default. Keys issued by STS, IMDS and the
                        container endpoint are known as well, until
                        /_sim/reset.
    aws_clock_skew_s    seconds added to the simulator's clock (default 0):
                        600 makes a correct client's X-Amz-Date 10 minutes
                        late. It moves every AWS "now": signature checks,
                        expirations, DateRange filters.

Test-only routes (not AWS APIs, no signature; under /__aws/ because /_sim/
belongs to the simulator core):

    GET /__aws/calls[?service=S&operation=O]
        Every signed AWS request, in order: {"seq", "time", "service",
        "operation", "method", "path", "status", "error" (code or null),
        "access_key", "region", "scope" (the credential scope),
        "amz_date", "signed_headers", "session_token" (sent or not),
        "token_signed", "principal" (the caller's ARN, null if unknown)}.
        Fields the request did not get far enough to carry are null.
    DELETE /__aws/calls
        Forget them (so does /_sim/reset).
"""

import base64
import calendar
import hashlib
import itertools
import re
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from simlib import route, state
from simlib.vendors import aws_sigv4 as sigv4

ACCOUNT_ID = "123456789012"
DEFAULT_CREDENTIALS = {"AKIDSIMULATOR": {"secret": "simulator-secret-key"}}
DEFAULT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/simulator"
MAX_SKEW_S = 300
REGION_RE = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
CORAL_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.coral.service/"

XMLNS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/",
         "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
         "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/"}
QUERY_VERSIONS = {"sts": "2011-06-15", "iam": "2010-05-08",
                  "ec2": "2016-11-15"}

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details.")

# kind -> protocol -> (status, code, message or None for the failure's own)
AUTH_ERRORS = {
    "missing": {
        "rest-json": (403, "MissingAuthenticationTokenException",
                      "Missing Authentication Token"),
        "query": (403, "MissingAuthenticationToken",
                  "Request is missing Authentication Token"),
        "ec2": (401, "AuthFailure",
                "AWS was not able to validate the provided access "
                "credentials")},
    "incomplete": {
        "rest-json": (403, "IncompleteSignatureException", None),
        "query": (400, "IncompleteSignature", None),
        "ec2": (400, "IncompleteSignature", None)},
    "unknown_key": {
        "rest-json": (403, "UnrecognizedClientException", INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", INVALID_TOKEN),
        "ec2": (401, "AuthFailure",
                "AWS was not able to validate the provided access "
                "credentials")},
    "bad_token": {
        "rest-json": (403, "UnrecognizedClientException", INVALID_TOKEN),
        "query": (403, "InvalidClientTokenId", INVALID_TOKEN),
        "ec2": (401, "AuthFailure",
                "AWS was not able to validate the provided access "
                "credentials")},
    "expired_token": {
        "rest-json": (403, "ExpiredTokenException", EXPIRED_TOKEN),
        "query": (403, "ExpiredToken", EXPIRED_TOKEN),
        "ec2": (400, "RequestExpired", "Request has expired.")},
    "skew": {
        "rest-json": (403, "InvalidSignatureException", None),
        "query": (403, "SignatureDoesNotMatch", None),
        "ec2": (400, "RequestExpired", "Request has expired.")},
    "signature": {
        "rest-json": (403, "InvalidSignatureException", None),
        "query": (403, "SignatureDoesNotMatch", None),
        "ec2": (403, "SignatureDoesNotMatch", None)},
}


# --- the clock ---------------------------------------------------------------

def now():
    """The simulator's AWS clock: wall time plus aws_clock_skew_s."""
    return time.time() + float(state.get("aws_clock_skew_s") or 0)


def iso(epoch, millis=False):
    """2025-01-17T08:00:00Z, or with milliseconds .123Z."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    if millis:
        text += f".{int(epoch * 1000) % 1000:03d}"
    return text + "Z"


def amz_date(epoch):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?"
                     r"(Z|[+-]\d\d:?\d\d)?")


def parse_time(text):
    """An ISO 8601 timestamp (ASFF's forms: Z or an offset, any
    fraction) as seconds since the epoch, or None."""
    if not isinstance(text, str):
        return None
    match = TIME_RE.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, sec, frac, zone = match.groups()
    try:
        epoch = calendar.timegm((int(year), int(month), int(day), int(hour),
                                 int(minute), int(sec), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if frac:
        epoch += float(frac)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def request_id():
    return str(uuid.uuid4())


# --- credentials -------------------------------------------------------------

_issued_lock = threading.Lock()
_issued = {}
_key_counter = itertools.count(1)


def _token_text(prefix, nbytes):
    return prefix + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def issue_credentials(source, arn, lifetime_s, user_id, chained=False):
    """New temporary credentials (ASIA key, secret, session token), known to
    the verifier until they expire. Returns their record:
    {"access_key", "secret", "token", "expiration" (epoch), "arn",
    "user_id", "account", "source", "chained"}."""
    n = next(_key_counter)
    digest = hashlib.sha256(f"{source}-{n}-{time.time()}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key = "ASIA" + "".join(alphabet[b % 32] for b in digest[:16])
    record = {
        "access_key": key,
        "secret": base64.b64encode(secrets.token_bytes(30)).decode(),
        # Real session tokens are several hundred base64 characters and
        # vary in length; tools must not assume a size.
        "token": _token_text("IQoJb3JpZ2luX2VjE", 300 + n % 64),
        "expiration": int(now()) + int(lifetime_s),
        "arn": arn,
        "user_id": user_id,
        "account": account_of(arn),
        "source": source,
        "chained": chained,
    }
    with _issued_lock:
        _issued[key] = record
    return record


def account_of(arn):
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 4 and parts[4] else ACCOUNT_ID


def credential_for(access_key):
    """The record of a known key, or None."""
    configured = state.get("aws_credentials")
    table = configured if isinstance(configured, dict) else DEFAULT_CREDENTIALS
    entry = table.get(access_key)
    if isinstance(entry, dict) and isinstance(entry.get("secret"), str):
        arn = entry.get("arn") or (
            DEFAULT_ARN if access_key == "AKIDSIMULATOR"
            else f"arn:aws:iam::{ACCOUNT_ID}:user/{access_key.lower()}")
        return {"access_key": access_key, "secret": entry["secret"],
                "token": entry.get("token"), "expiration": None,
                "arn": arn, "account": account_of(arn),
                "user_id": entry.get("user_id") or "AIDA" + hashlib.sha256(
                    access_key.encode()).hexdigest()[:17].upper(),
                "source": "static", "chained": False}
    with _issued_lock:
        return _issued.get(access_key)


# --- verification ------------------------------------------------------------

class AuthFailure(Exception):
    def __init__(self, kind, message, auth=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.auth = auth


class Caller:
    """Who signed an accepted request, and how."""

    def __init__(self, auth, credential, amz, token_sent, token_signed):
        self.auth = auth
        self.access_key = auth.access_key
        self.region = auth.region
        self.service = auth.service
        self.amz_date = amz
        self.credential = credential
        self.arn = credential["arn"]
        self.account = credential["account"]
        self.token_sent = token_sent
        self.token_signed = token_signed


def authenticate(req, service):
    """Verify req's signature for service; returns a Caller or raises
    AuthFailure (see the module docstring for the order of checks)."""
    header = req.headers.get("Authorization")
    if not header:
        raise AuthFailure("missing", None)
    try:
        auth = sigv4.parse_authorization(header)
    except sigv4.Malformed as exc:
        raise AuthFailure("incomplete", str(exc)) from None
    amz = req.headers.get("X-Amz-Date")
    if not amz:
        raise AuthFailure("incomplete", (
            "Authorization header requires existence of either a "
            f"'X-Amz-Date' or a 'Date' header. Authorization={header}"), auth)
    signed_at = sigv4.parse_amz_date(amz)
    if signed_at is None:
        raise AuthFailure("incomplete", (
            f"Date must be in ISO-8601 'basic format'. Got '{amz}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"), auth)
    signed = sorted(name.lower() for name in auth.signed_headers)
    if "host" not in signed:
        raise AuthFailure("incomplete", (
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
            "Authorization."), auth)
    if auth.date != amz[:8]:
        raise AuthFailure("signature", (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{auth.date}' != '{amz[:8]}', from "
            f"'{amz}'."), auth)
    clock = now()
    if signed_at < clock - MAX_SKEW_S:
        raise AuthFailure("skew", (
            f"Signature expired: {amz} is now earlier than "
            f"{amz_date(clock - MAX_SKEW_S)} ({amz_date(clock)} - 5 min.)"),
            auth)
    if signed_at > clock + MAX_SKEW_S:
        raise AuthFailure("skew", (
            f"Signature not yet current: {amz} is still later than "
            f"{amz_date(clock + MAX_SKEW_S)} ({amz_date(clock)} + 5 min.)"),
            auth)
    if auth.terminator != sigv4.TERMINATOR:
        raise AuthFailure("signature", (
            "Credential should be scoped with a valid terminator: "
            f"'aws4_request', not '{auth.terminator}'."), auth)
    if auth.service != service:
        raise AuthFailure("signature", (
            f"Credential should be scoped to correct service: '{service}'. "),
            auth)
    if not REGION_RE.fullmatch(auth.region):
        raise AuthFailure("signature", (
            f"Credential should be scoped to a valid region, not "
            f"'{auth.region}'. "), auth)
    credential = credential_for(auth.access_key)
    if credential is None:
        raise AuthFailure("unknown_key", None, auth)
    token = req.headers.get("X-Amz-Security-Token")
    if (token or None) != (credential["token"] or None):
        raise AuthFailure("bad_token", None, auth)
    expiration = credential["expiration"]
    if expiration is not None and clock >= expiration:
        raise AuthFailure("expired_token", None, auth)
    creq = sigv4.canonical_request(req.method, req.path, req.raw_query,
                                   req.headers.get_all, signed, req.body)
    sts = sigv4.string_to_sign(amz, auth.scope, creq)
    expected = sigv4.signature(credential["secret"], auth.date, auth.region,
                               auth.service, sts)
    if not sigv4.signatures_equal(auth.signature, expected):
        raise AuthFailure("signature", (
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request "
            f"should have been\n'{creq}'\n\nThe String-to-Sign should have "
            f"been\n'{sts}'\n"), auth)
    return Caller(auth, credential, amz, token is not None,
                  "x-amz-security-token" in signed)


def auth_error(failure, protocol):
    """(status, code, message) for an AuthFailure under a protocol."""
    status, code, message = AUTH_ERRORS[failure.kind][protocol]
    return status, code, message or failure.message


# --- the call log ------------------------------------------------------------

_calls_lock = threading.Lock()
_calls = []
CALLS_MAX = 200000


def record_call(req, service, operation, status, error, caller=None,
                failure=None):
    auth = caller.auth if caller else (failure.auth if failure else None)
    entry = {
        "seq": 0, "time": time.time(), "service": service,
        "operation": operation, "method": req.method, "path": req.path,
        "status": status, "error": error,
        "access_key": auth.access_key if auth else None,
        "region": auth.region if auth else None,
        "scope": auth.scope if auth else None,
        "amz_date": req.headers.get("X-Amz-Date"),
        "signed_headers": (sorted(h.lower() for h in auth.signed_headers)
                           if auth else None),
        "session_token": "X-Amz-Security-Token" in req.headers,
        "token_signed": bool(auth) and "x-amz-security-token" in
        (h.lower() for h in auth.signed_headers),
        "principal": caller.arn if caller else None,
    }
    with _calls_lock:
        entry["seq"] = len(_calls) + 1
        if len(_calls) >= CALLS_MAX:
            del _calls[:CALLS_MAX // 10]
        _calls.append(entry)


@route("GET,DELETE", r"/__aws/calls")
def calls(req):
    if req.method == "DELETE":
        with _calls_lock:
            _calls.clear()
        return 200, {}, {"ok": True}
    service = req.query.get("service")
    operation = req.query.get("operation")
    with _calls_lock:
        return 200, {}, [c for c in _calls
                         if (not service or c["service"] == service)
                         and (not operation or c["operation"] == operation)]


# --- rest-json ---------------------------------------------------------------

def rest_json_headers(rid=None):
    return {"Content-Type": "application/json",
            "x-amzn-RequestId": rid or request_id()}


def rest_json_error(status, code, message, coral=False, modeled=True):
    """A rest-json error answer.

    Modeled service errors (InvalidInputException...) carry {"Code",
    "Message"}, the members of their shapes; errors of the AWS front end
    (authentication, throttling) carry {"message"} and the Coral suffix on
    x-amzn-ErrorType.
    """
    headers = rest_json_headers()
    headers["x-amzn-ErrorType"] = code + (CORAL_SUFFIX if coral else "")
    body = ({"Code": code, "Message": message} if modeled
            else {"message": message})
    return status, headers, body


def rest_json_call(req, service, operation, handler):
    """Authenticate req for service, run handler(req, caller), log the call."""
    try:
        caller = authenticate(req, service)
    except AuthFailure as failure:
        status, code, message = auth_error(failure, "rest-json")
        record_call(req, service, operation, status, code, failure=failure)
        return rest_json_error(status, code, message, coral=True,
                               modeled=False)
    status, headers, body = handler(req, caller)
    code = next((v.split(":")[0] for k, v in headers.items()
                 if k.lower() == "x-amzn-errortype"), None)
    record_call(req, service, operation, status, code, caller=caller)
    return status, headers, body


# --- query protocol (STS, IAM; EC2 has its own envelopes) --------------------

def xml_lines(tag, value, depth):
    pad = "  " * depth
    if isinstance(value, list):
        lines = [f"{pad}<{tag}>"]
        for child_tag, child in value:
            lines.extend(xml_lines(child_tag, child, depth + 1))
        lines.append(f"{pad}</{tag}>")
        return lines
    return [f"{pad}<{tag}>{escape(str(value))}</{tag}>"]


def xml_document(root, xmlns, children):
    """An XML answer laid out as AWS's are: indented by 2, final newline.

    children is a list of (tag, text or list of children) pairs.
    """
    lines = [f'<{root} xmlns="{xmlns}">'] if xmlns else [f"<{root}>"]
    for tag, value in children:
        lines.extend(xml_lines(tag, value, 1))
    lines.append(f"</{root}>")
    return "\n".join(lines) + "\n"


def query_response(service, action, result, rid=None):
    """Success: <ActionResponse><ActionResult>...</ActionResult>
    <ResponseMetadata><RequestId>. result is a children list or None."""
    rid = rid or request_id()
    children = []
    if result is not None:
        children.append((f"{action}Result", result))
    children.append(("ResponseMetadata", [("RequestId", rid)]))
    body = xml_document(f"{action}Response", XMLNS[service], children)
    return 200, {"x-amzn-RequestId": rid, "Content-Type": "text/xml"}, body


def query_error(service, status, code, message):
    rid = request_id()
    if service == "ec2":
        body = xml_document("Response", None, [
            ("Errors", [("Error", [("Code", code), ("Message", message)])]),
            ("RequestID", rid)])
        return status, {"Content-Type": "text/xml;charset=UTF-8"}, body
    fault = "Receiver" if status >= 500 else "Sender"
    body = xml_document("ErrorResponse", XMLNS[service], [
        ("Error", [("Type", fault), ("Code", code), ("Message", message)]),
        ("RequestId", rid)])
    return status, {"x-amzn-RequestId": rid, "Content-Type": "text/xml"}, body


class QueryError(Exception):
    """Raised by query actions: answered in the service's error envelope."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# (service, Action) -> handler(req, params, caller) -> (status, headers, body)
QUERY_ACTIONS = {}


def query_action(service, action):
    """Register a query-protocol action, e.g. @query_action("sts",
    "AssumeRole"). The handler raises QueryError for modeled errors."""
    def register(handler):
        QUERY_ACTIONS[(service, action)] = handler
        return handler
    return register


def query_service(req, params):
    """Which service a POST / is for: the credential scope's, else the one
    whose API version the request names, else STS."""
    header = req.headers.get("Authorization") or ""
    try:
        return sigv4.parse_authorization(header).service
    except sigv4.Malformed:
        pass
    version = params.get("Version")
    for service, known in QUERY_VERSIONS.items():
        if known == version:
            return service
    return "sts"


@route("POST", r"/")
def query_endpoint(req):
    params = dict(parse_qsl(req.raw_query, keep_blank_values=True))
    params.update(parse_qsl(req.body.decode("utf-8", "replace"),
                            keep_blank_values=True))
    service = query_service(req, params)
    action = params.get("Action")
    if service not in QUERY_VERSIONS:
        # Signed for a service that does not live at POST /: the request
        # reached the STS endpoint with another service's scope.
        service, expected = "sts", "sts"
    else:
        expected = service
    protocol = "ec2" if service == "ec2" else "query"
    try:
        caller = authenticate(req, expected)
    except AuthFailure as failure:
        status, code, message = auth_error(failure, protocol)
        record_call(req, service, action, status, code, failure=failure)
        return query_error(service, status, code, message)
    handler = QUERY_ACTIONS.get((service, action))
    if not action:
        answer = query_error(service, 400, "MissingAction",
                             "Missing Action")
    elif handler is None or params.get("Version") != QUERY_VERSIONS[service]:
        # UNVERIFIED wording; the code is the documented common error.
        answer = query_error(
            service, 400, "InvalidAction",
            f"Could not find operation {action} for version "
            f"{params.get('Version') or 'NO_VERSION_SPECIFIED'}")
    else:
        try:
            answer = handler(req, params, caller)
        except QueryError as exc:
            answer = query_error(service, exc.status, exc.code, exc.message)
    code = None
    if answer[0] >= 400:
        match = re.search(r"<Code>([^<]*)</Code>", answer[2])
        code = match.group(1) if match else None
    record_call(req, service, action, answer[0], code, caller=caller)
    return answer


def reset():
    with _issued_lock:
        _issued.clear()
    with _calls_lock:
        _calls.clear()
