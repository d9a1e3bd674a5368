"""AWS STS (query protocol, API version 2011-06-15): AssumeRole and
GetCallerIdentity, at POST / (see aws.py for the dispatch and signing).

AssumeRole (Action=AssumeRole&Version=2011-06-15&RoleArn=...&RoleSessionName=
...[&DurationSeconds=...][&ExternalId=...]) answers the XML of API.md 6:
<AssumeRoleResponse><AssumeRoleResult><Credentials>(AccessKeyId ASIA...,
SecretAccessKey, SessionToken, Expiration = now + DurationSeconds, to the
second)</Credentials><AssumedRoleUser>(AssumedRoleId AROA...:session, Arn
arn:aws:sts::ACCOUNT:assumed-role/NAME/session)</AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>. The credentials are then
accepted by every signed route until they expire (then ExpiredToken).

Checks, in order:

 1. Parameters, all reported at once as 400 ValidationError "N validation
    error(s) detected: Value 'x' at 'member' failed to satisfy constraint:
    ...": RoleArn present, 20-2048 characters; RoleSessionName present, 2-64
    characters of [\\w+=,.@-]; DurationSeconds an integer 900-43200 (default
    3600); ExternalId 2-1224 characters of [\\w+=,.@:/-]. (The format of
    these messages is the AWS validation format; the exact texts are
    UNVERIFIED.)
 2. The role. With the setting aws_roles unset, any role ARN of the form
    arn:aws:iam::<12 digits>:role/[path/]name is assumable by any known key;
    anything else is 403 AccessDenied. With aws_roles set, only the roles
    it lists exist:
        {"arn:aws:iam::111122223333:role/SocResponder": {
            "external_id": "x",          required and equal when set
            "allowed": ["AKID", "arn:..."],  callers allowed (access keys or
                                         principal ARNs); default: any
            "max_session_duration": 3600 the role's MaxSessionDuration}}
    An unknown role, a wrong or missing ExternalId, a caller not allowed:
    403 AccessDenied "User: <caller arn> is not authorized to perform:
    sts:AssumeRole on resource: <role arn>" (Type Sender). API.md lists
    AccessDenied as UNVERIFIED; this 403 answer, envelope and message, is
    quoted whole in public bug reports.
 3. DurationSeconds above the role's max_session_duration (default 3600,
    AWS's default MaxSessionDuration): 400 ValidationError "The requested
    DurationSeconds exceeds the MaxSessionDuration set for this role.";
    above 3600 when the caller is itself a role session (credentials from
    AssumeRole, IMDS or a container endpoint): 400
    ValidationError "The requested DurationSeconds exceeds the 1 hour
    session limit for roles assumed by role chaining."

GetCallerIdentity answers Arn, UserId and Account of the signing key.
Other actions: 400 InvalidAction (aws.py).
"""

import hashlib
import re

from simlib import state
from simlib.vendors import aws

ROLE_ARN_RE = re.compile(
    r"arn:aws:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})")
SESSION_NAME_RE = re.compile(r"[\w+=,.@-]*")
EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]*")
DEFAULT_DURATION = 3600
DEFAULT_MAX_SESSION = 3600


def validation(problems):
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return aws.QueryError(400, "ValidationError",
                          f"{count} validation {noun} detected: "
                          + "; ".join(problems))


def check_string(problems, params, name, member, low, high, pattern,
                 required):
    value = params.get(name)
    if value is None:
        if required:
            problems.append(f"Value null at '{member}' failed to satisfy "
                            "constraint: Member must not be null")
        return None
    if len(value) < low:
        problems.append(f"Value '{value}' at '{member}' failed to satisfy "
                        "constraint: Member must have length greater than "
                        f"or equal to {low}")
    elif len(value) > high:
        problems.append(f"Value '{value}' at '{member}' failed to satisfy "
                        "constraint: Member must have length less than or "
                        f"equal to {high}")
    elif pattern and not pattern[0].fullmatch(value):
        problems.append(f"Value '{value}' at '{member}' failed to satisfy "
                        "constraint: Member must satisfy regular expression "
                        f"pattern: {pattern[1]}")
    return value


def check_duration(problems, params):
    text = params.get("DurationSeconds")
    if text is None:
        return DEFAULT_DURATION
    try:
        value = int(text)
    except ValueError:
        problems.append(f"Value '{text}' at 'durationSeconds' failed to "
                        "satisfy constraint: Member must be a number")
        return None
    if value < 900:
        problems.append(f"Value '{value}' at 'durationSeconds' failed to "
                        "satisfy constraint: Member must have value greater "
                        "than or equal to 900")
    elif value > 43200:
        problems.append(f"Value '{value}' at 'durationSeconds' failed to "
                        "satisfy constraint: Member must have value less "
                        "than or equal to 43200")
    return value


def role_settings(role_arn):
    """The role's settings, or None when it does not exist."""
    roles = state.get("aws_roles")
    if isinstance(roles, dict):
        entry = roles.get(role_arn)
        return entry if isinstance(entry, dict) else None
    return {} if ROLE_ARN_RE.fullmatch(role_arn) else None


def denied(caller, role_arn):
    return aws.QueryError(
        403, "AccessDenied",
        f"User: {caller.arn} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn}")


def role_id(role_arn):
    digest = hashlib.sha256(role_arn.encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "AROA" + "".join(alphabet[b % 32] for b in digest[:17])


@aws.query_action("sts", "AssumeRole")
def assume_role(req, params, caller):
    problems = []
    role_arn = check_string(problems, params, "RoleArn", "roleArn", 20, 2048,
                            None, True)
    session = check_string(problems, params, "RoleSessionName",
                           "roleSessionName", 2, 64,
                           (SESSION_NAME_RE, r"[\w+=,.@-]*"), True)
    duration = check_duration(problems, params)
    external_id = check_string(problems, params, "ExternalId", "externalId",
                               2, 1224, (EXTERNAL_ID_RE, r"[\w+=,.@:\/-]*"),
                               False)
    if problems:
        raise validation(problems)
    role = role_settings(role_arn)
    if role is None:
        raise denied(caller, role_arn)
    wanted_id = role.get("external_id")
    if wanted_id is not None and external_id != wanted_id:
        raise denied(caller, role_arn)
    allowed = role.get("allowed")
    if allowed is not None and caller.access_key not in allowed \
            and caller.arn not in allowed:
        raise denied(caller, role_arn)
    if duration > int(role.get("max_session_duration", DEFAULT_MAX_SESSION)):
        raise aws.QueryError(
            400, "ValidationError", "The requested DurationSeconds exceeds "
            "the MaxSessionDuration set for this role.")
    if caller.credential.get("chained") and duration > 3600:
        raise aws.QueryError(
            400, "ValidationError", "The requested DurationSeconds exceeds "
            "the 1 hour session limit for roles assumed by role chaining.")
    match = ROLE_ARN_RE.fullmatch(role_arn)
    account = match.group(1) if match else aws.account_of(role_arn)
    name = match.group(3) if match else role_arn.rsplit("/", 1)[-1]
    assumed_id = f"{role_id(role_arn)}:{session}"
    arn = f"arn:aws:sts::{account}:assumed-role/{name}/{session}"
    issued = aws.issue_credentials("sts", arn, duration, assumed_id,
                                   chained=True)
    return aws.query_response("sts", "AssumeRole", [
        ("Credentials", [
            ("AccessKeyId", issued["access_key"]),
            ("SecretAccessKey", issued["secret"]),
            ("SessionToken", issued["token"]),
            ("Expiration", aws.iso(issued["expiration"])),
        ]),
        ("AssumedRoleUser", [
            ("AssumedRoleId", assumed_id),
            ("Arn", arn),
        ]),
    ])


@aws.query_action("sts", "GetCallerIdentity")
def get_caller_identity(req, params, caller):
    return aws.query_response("sts", "GetCallerIdentity", [
        ("Arn", caller.arn),
        ("UserId", caller.credential["user_id"]),
        ("Account", caller.account),
    ])
