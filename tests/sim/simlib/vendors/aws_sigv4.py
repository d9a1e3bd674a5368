"""AWS Signature Version 4, the verifying side: the simulator's own code.

This module only computes; aws.py decides what a request must carry and
answers the errors. It is written from the specification (shared/API.md
2.2, the AWS SigV4 documentation), independently of the tools' C signer and
of the test signer tests/helpers/aws_sign.py, so that the three can only
agree by all being right.

The canonical request is rebuilt from the request as it was received:

    method          as received
    canonical URI   the path as it arrived (still percent-encoded), with
                    empty and "." segments dropped and ".." applied, then
                    URI-encoded once more keeping "/" and "~": the rule of
                    every service but S3 (botocore double-encodes the same
                    way)
    query           every name and value decoded, then encoded keeping only
                    A-Z a-z 0-9 - _ . ~, sorted by name then value
    headers         the names listed in SignedHeaders, lower-cased and
                    sorted, each with the received values, trimmed, inner
                    whitespace runs collapsed to one space, repeats joined
                    with ","; a listed header that was not sent counts as
                    an empty value (so the signature cannot match)
    payload         hex SHA-256 of the body as received

Nothing here reads the clock or the settings: callers pass them in.
"""

import calendar
import hashlib
import hmac
import re
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_RE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")


class Malformed(Exception):
    """The Authorization header cannot be taken apart; str() is the message
    the service would give."""


class Authorization:
    """The parts of an Authorization header."""

    __slots__ = ("header", "access_key", "date", "region", "service",
                 "terminator", "signed_headers", "signature")

    @property
    def scope(self):
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def parse_authorization(header):
    """Split an Authorization header; raises Malformed.

    The messages follow the ones AWS front ends give for these mistakes
    (UNVERIFIED: seen quoted in bug reports, not in AWS documentation).
    """
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise Malformed(f"Unsupported AWS 'algorithm': '{algorithm}'. "
                        f"Authorization={header}")
    params = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = value.strip()
    missing = [n for n in ("Credential", "Signature", "SignedHeaders")
               if not params.get(n)]
    if missing:
        raise Malformed(" ".join(
            f"Authorization header requires '{n}' parameter." for n in missing)
            + f" Authorization={header}")
    credential = params["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        raise Malformed(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{params['Credential']}'")
    auth = Authorization()
    auth.header = header
    (auth.access_key, auth.date, auth.region, auth.service,
     auth.terminator) = credential
    auth.signed_headers = params["SignedHeaders"].split(";")
    auth.signature = params["Signature"]
    return auth


def parse_amz_date(text):
    """X-Amz-Date (basic ISO 8601, UTC) as seconds since the epoch, or None."""
    match = AMZ_DATE_RE.fullmatch(text or "")
    if not match:
        return None
    try:
        return calendar.timegm(tuple(int(g) for g in match.groups())
                               + (0, 0, 0))
    except (ValueError, OverflowError):
        return None


def canonical_uri(raw_path):
    kept = []
    for segment in raw_path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    path = "/" + "/".join(kept)
    if kept and raw_path.endswith("/"):
        path += "/"
    return quote(path, safe="/~")


def canonical_query(raw_query):
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="~"),
                      quote(unquote(value), safe="~")))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def canonical_value(values):
    return ",".join(" ".join(v.split()) for v in values)


def canonical_request(method, raw_path, raw_query, get_all, signed, body):
    """The canonical request; get_all(name) lists a header's received values.

    signed must already be lower-cased and sorted.
    """
    lines = [method, canonical_uri(raw_path), canonical_query(raw_query)]
    for name in signed:
        lines.append(f"{name}:{canonical_value(get_all(name) or [])}")
    lines.append("")
    lines.append(";".join(signed))
    lines.append(hashlib.sha256(body).hexdigest())
    return "\n".join(lines)


def string_to_sign(amz_date, scope, creq):
    digest = hashlib.sha256(creq.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signature(secret, date, region, service, sts):
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()


def signatures_equal(given, expected):
    return hmac.compare_digest(given.encode("utf-8", "replace"),
                               expected.encode("utf-8"))
