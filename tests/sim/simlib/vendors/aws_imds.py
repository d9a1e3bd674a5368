"""EC2 instance metadata (IMDS) and container credentials: the last steps of
the AWS credential chain (API.md 2.3). Neither is signed.

IMDS (tools reach it through their IMDS endpoint setting, e.g.
AWS_EC2_METADATA_SERVICE_ENDPOINT=$SIM_URL):

    PUT /latest/api/token
        Needs x-aws-ec2-metadata-token-ttl-seconds, an integer 1-21600:
        else 400. A request carrying X-Forwarded-For is refused 403 (IMDS
        does so to keep tokens away from proxies). Answers the token
        (text/plain) and the TTL header; the token is valid for that many
        seconds of the simulator's AWS clock. Other methods: 405.
    GET /latest/meta-data/iam/security-credentials/
        The role name (text/plain), or 404 when imds_role is null.
    GET /latest/meta-data/iam/security-credentials/<role>
        {"Code": "Success", "LastUpdated", "Type": "AWS-HMAC",
        "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, laid out
        as IMDS does ("Key" : value, indented by 2), text/plain. Another
        role name: 404.
    GET /latest/meta-data/iam/info, /latest/meta-data/instance-id,
        /latest/meta-data/placement/region, .../availability-zone,
        /latest/dynamic/instance-identity/document
        What a tool may want besides credentials.
    Any other path under /latest/: 404.

    Every GET needs x-aws-ec2-metadata-token set to a live token: without
    one, 401 unless imds_v1 is true; with an unknown or expired one, 401
    always (IMDS ignores nothing it was given). Errors have IMDS's small
    XHTML body ("<title>401 - Unauthorized</title>"), text/html.

    The credentials are issued by the simulator and accepted by every
    signed route until they expire. The same ones are served until less
    than min(15 min, half their lifetime) is left, then new ones.

Settings (POST /_sim/state/NAME):

    imds_v1             true: a GET without a token is served (IMDSv1).
    imds_token_status   e.g. 403, 404 or 405: PUT /latest/api/token
                        answers that status (the "fall back to v1" cases of
                        API.md 2.3) or any other.
    imds_role           the instance role's name (default
                        "soar-instance-role"); null: no role attached.
    imds_expiration_s   lifetime of the credentials (default 21600, 6 h).
    imds_credentials_error  {"Code": "...", "Message": "..."}: the
                        credentials document is this error instead (200,
                        as IMDS answers a failed role assumption).
    imds_region         the instance's region (default "us-east-1").

Container credentials (ECS task roles, EKS Pod Identity):

    GET /v2/credentials/<id>            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
                                        (any id)
    GET /container-credentials/<any>    AWS_CONTAINER_CREDENTIALS_FULL_URI
                                        = $SIM_URL/container-credentials/...
        {"RoleArn", "AccessKeyId", "SecretAccessKey", "Token",
        "Expiration"}, application/json. When container_auth_token is set,
        the Authorization header must equal it, else 401 {"Code":
        "AccessDenied", "Message": ...} (the agents' exact answer is
        UNVERIFIED).

    container_auth_token    the token AWS_CONTAINER_AUTHORIZATION_TOKEN
                            must carry (default: none needed).
    container_role_arn      default arn:aws:iam::123456789012:role/
                            soar-task-role
    container_expiration_s  lifetime (default 21600).
"""

import base64
import json
import secrets
import threading

from simlib import route, state
from simlib.vendors import aws

DEFAULT_ROLE = "soar-instance-role"
DEFAULT_LIFETIME = 21600
INSTANCE_ID = "i-0123456789abcdef0"
MAX_TOKEN_TTL = 21600
STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
               404: "Not Found", 405: "Method Not Allowed",
               500: "Internal Server Error", 503: "Service Unavailable"}

_lock = threading.Lock()
_tokens = {}        # token -> expiry on the AWS clock
_current = {}       # "imds:<role>" or "container:<arn>" -> issued record


def imds_error(status):
    """IMDS's error page."""
    title = f"{status} - {STATUS_TEXT.get(status, 'Error')}"
    body = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" '
            'lang="en">\n'
            f' <head>\n  <title>{title}</title>\n </head>\n'
            f' <body>\n  <h1>{title}</h1>\n </body>\n</html>\n')
    return status, {"Content-Type": "text/html", "Server": "EC2ws"}, body


def imds_text(text):
    return 200, {"Content-Type": "text/plain", "Server": "EC2ws"}, text


def current_credentials(slot, arn, lifetime, user_id):
    """The credentials served for slot, renewed when they run low."""
    with _lock:
        record = _current.get(slot)
        left = record["expiration"] - aws.now() if record else 0
        if record is None or left < min(900, record["lifetime"] / 2):
            # Instance and task credentials are role sessions: assuming a
            # role with them is role chaining.
            record = aws.issue_credentials(slot.split(":")[0], arn, lifetime,
                                           user_id, chained=True)
            record["lifetime"] = lifetime
            record["issued_at"] = aws.now()
            _current[slot] = record
        return record


def lifetime_setting(name):
    value = state.get(name)
    return DEFAULT_LIFETIME if value is None else max(1, int(value))


# --- IMDS --------------------------------------------------------------------

@route("PUT", r"/latest/api/token")
def imds_token(req):
    forced = state.get("imds_token_status")
    if forced is not None:
        return imds_error(int(forced))
    if "X-Forwarded-For" in req.headers:
        return imds_error(403)
    text = req.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_TTL:
        return imds_error(400)
    ttl = int(text)
    token = "AQAEA" + base64.urlsafe_b64encode(
        secrets.token_bytes(39)).decode()
    with _lock:
        _tokens[token] = aws.now() + ttl
    status, headers, body = imds_text(token)
    headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = str(ttl)
    return status, headers, body


def imds_refusal(req):
    """None when the request may read metadata, else the 401 answer."""
    token = req.headers.get("x-aws-ec2-metadata-token")
    if token is None:
        return None if state.get("imds_v1") else imds_error(401)
    with _lock:
        expiry = _tokens.get(token)
    if expiry is None or aws.now() >= expiry:
        return imds_error(401)
    return None


def imds_role():
    role = state.get("imds_role", DEFAULT_ROLE)
    return role or None


def instance_profile_arn(role):
    return f"arn:aws:iam::{aws.ACCOUNT_ID}:instance-profile/{role}"


@route("GET", r"/latest/meta-data/iam/security-credentials/?")
def imds_role_list(req):
    refusal = imds_refusal(req)
    if refusal:
        return refusal
    role = imds_role()
    return imds_text(role) if role else imds_error(404)


@route("GET", r"/latest/meta-data/iam/security-credentials/(?P<role>[^/]+)")
def imds_credentials(req):
    refusal = imds_refusal(req)
    if refusal:
        return refusal
    role = imds_role()
    if not role or req.params["role"] != role:
        return imds_error(404)
    failure = state.get("imds_credentials_error")
    if isinstance(failure, dict):
        doc = {"Code": failure.get("Code", "AssumeRoleUnauthorizedAccess"),
               "Message": failure.get("Message", "EC2 cannot assume the "
                                      "role of this instance profile."),
               "LastUpdated": aws.iso(aws.now())}
    else:
        arn = (f"arn:aws:sts::{aws.ACCOUNT_ID}:assumed-role/{role}/"
               f"{INSTANCE_ID}")
        record = current_credentials(
            f"imds:{role}", arn, lifetime_setting("imds_expiration_s"),
            f"AROAIMDSSIMULATOR0001:{INSTANCE_ID}")
        doc = {"Code": "Success",
               "LastUpdated": aws.iso(record["issued_at"]),
               "Type": "AWS-HMAC",
               "AccessKeyId": record["access_key"],
               "SecretAccessKey": record["secret"],
               "Token": record["token"],
               "Expiration": aws.iso(record["expiration"])}
    return imds_text(json.dumps(doc, indent=2, separators=(",", " : ")))


@route("GET", r"/latest/meta-data/iam/info")
def imds_iam_info(req):
    refusal = imds_refusal(req)
    if refusal:
        return refusal
    role = imds_role()
    if not role:
        return imds_error(404)
    doc = {"Code": "Success", "LastUpdated": aws.iso(aws.now()),
           "InstanceProfileArn": instance_profile_arn(role),
           "InstanceProfileId": "AIPAIMDSSIMULATOR0001"}
    return imds_text(json.dumps(doc, indent=2, separators=(",", " : ")))


def imds_region():
    return state.get("imds_region") or "us-east-1"


@route("GET", r"/latest/meta-data/instance-id")
def imds_instance_id(req):
    return imds_refusal(req) or imds_text(INSTANCE_ID)


@route("GET", r"/latest/meta-data/placement/region")
def imds_placement_region(req):
    return imds_refusal(req) or imds_text(imds_region())


@route("GET", r"/latest/meta-data/placement/availability-zone")
def imds_placement_zone(req):
    return imds_refusal(req) or imds_text(imds_region() + "a")


@route("GET", r"/latest/dynamic/instance-identity/document")
def imds_identity(req):
    refusal = imds_refusal(req)
    if refusal:
        return refusal
    region = imds_region()
    doc = {"accountId": aws.ACCOUNT_ID, "architecture": "x86_64",
           "availabilityZone": region + "a",
           "imageId": "ami-0abcdef1234567890",
           "instanceId": INSTANCE_ID, "instanceType": "t3.micro",
           "pendingTime": "2024-01-01T00:00:00Z",
           "privateIp": "10.0.1.23", "region": region, "version": "2017-09-30"}
    return imds_text(json.dumps(doc, indent=2, separators=(",", " : ")))


@route("ANY", r"/latest(/.*)?")
def imds_elsewhere(req):
    # This catch-all takes every method, so the registry's own 405 never
    # comes for the token path: answer it here, as IMDS does.
    if req.path == "/latest/api/token":
        status, headers, body = imds_error(405)
        headers["Allow"] = "PUT"
        return status, headers, body
    return imds_refusal(req) or imds_error(404)


# --- container credentials ---------------------------------------------------

def container_credentials(req):
    wanted = state.get("container_auth_token")
    if wanted and req.headers.get("Authorization") != wanted:
        return 401, {"Content-Type": "application/json"}, {
            "Code": "AccessDenied",
            "Message": "Authorization token is missing or invalid"}
    arn = state.get("container_role_arn") or \
        f"arn:aws:iam::{aws.ACCOUNT_ID}:role/soar-task-role"
    name = arn.rsplit("/", 1)[-1]
    session = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    record = current_credentials(
        f"container:{arn}",
        f"arn:aws:sts::{aws.account_of(arn)}:assumed-role/{name}/{session}",
        lifetime_setting("container_expiration_s"),
        f"AROACONTAINERSIM0001:{session}")
    return 200, {"Content-Type": "application/json"}, {
        "RoleArn": arn,
        "AccessKeyId": record["access_key"],
        "SecretAccessKey": record["secret"],
        "Token": record["token"],
        "Expiration": aws.iso(record["expiration"]),
    }


@route("GET", r"/v2/credentials/[^/]+")
def container_relative(req):
    return container_credentials(req)


@route("GET", r"/container-credentials(/.*)?")
def container_full(req):
    return container_credentials(req)


def reset():
    with _lock:
        _tokens.clear()
        _current.clear()
