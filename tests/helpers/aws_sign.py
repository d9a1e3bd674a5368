#!/usr/bin/env python3
"""A minimal AWS SigV4 signer and HTTP client, for tests only.

It exists so that the simulator's verifier (tests/sim/simlib/vendors/
aws_sigv4.py) can be tested before and apart from the tools' C signer. It
is written separately from the verifier, and tests/sim_aws.bats holds it to
the AWS test suite (shared/corpus/sigv4/aws4_testsuite), so that the two
Python sides cannot share a mistake unnoticed.

    aws_sign.py vector CASE_DIR [--creq]
        Sign the suite case's .req with the suite's inputs (AKIDEXAMPLE,
        us-east-1, service "service", 20150830T123600Z); print the
        Authorization value, or with --creq the canonical request.

    aws_sign.py call [options] METHOD URL [BODY]
        Sign and send one request; print one JSON line {"status",
        "headers" (lower-case names), "body" (parsed when JSON), "xml"
        (for XML bodies: {"Root/Child/...": text}), "xml_paths" (those
        paths in document order)}.

Options of call:
    --service NAME --region NAME        the credential scope (securityhub,
                                        us-east-1)
    --key AKID --secret S --token T     credentials (AKIDSIMULATOR,
                                        simulator-secret-key, none)
    --header 'Name: value'              an extra header, signed
    --content-type TYPE                 default application/json, or the
                                        form type for BODY with Action=
    --skew SECONDS                      shift the signer's clock
    --date YYYYMMDDTHHMMSSZ             sign at this time
    --scope-date YYYYMMDD               put another date in the scope
    --token-unsigned                    send the token without signing it
    --no-sign                           send no Authorization at all
    --send-body BODY                    sign BODY but send this instead
    --after 'Name: value'               after signing, set this header
                                        (replacing a signed value, or
                                        adding an unsigned header)
    --repeat N                          send N times (fresh signature each,
                                        one connection); print {"statuses",
                                        "seconds" (first send to last
                                        answer), "first": {"<status>": the
                                        first answer with that status}}
    --interval SECONDS                  with --repeat: pause between sends
    --follow                            GetFindings paging: resend with each
                                        answer's NextToken until there is
                                        none; print {"pages", "statuses",
                                        "ids", "seconds"}
    --findings                          with --follow: add "findings", every
                                        finding of every page
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = "20150830T123600Z"


def sha256_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hmac_bytes(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def encode_component(text):
    # RFC 3986 unreserved characters stay; everything else is %XX.
    return urllib.parse.quote(text, safe="-_.~")


def path_for_signing(path):
    stack = []
    for part in path.split("/"):
        if part == "..":
            stack = stack[:-1]
        elif part and part != ".":
            stack.append(part)
    normal = "/" + "/".join(stack)
    if stack and path.endswith("/"):
        normal = normal + "/"
    return urllib.parse.quote(normal, safe="/-_.~")


def query_for_signing(query):
    items = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted((encode_component(k), encode_component(v))
                     for k, v in items)
    return "&".join(k + "=" + v for k, v in encoded)


def sign(method, path, query, headers, body, key, secret, region, service,
         stamp, scope_date=None):
    """headers: list of (name, value) to sign. Returns (authorization,
    canonical request)."""
    grouped = {}
    for name, value in headers:
        grouped.setdefault(name.strip().lower(), []).append(
            " ".join(value.strip().split()))
    names = sorted(grouped)
    canonical = "\n".join(
        [method, path_for_signing(path), query_for_signing(query)]
        + [n + ":" + ",".join(grouped[n]) for n in names]
        + ["", ";".join(names), sha256_hex(body)])
    scope = "/".join([scope_date or stamp[:8], region, service,
                      "aws4_request"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         sha256_hex(canonical)])
    key_bytes = ("AWS4" + secret).encode("utf-8")
    for part in (stamp[:8], region, service, "aws4_request"):
        key_bytes = hmac_bytes(key_bytes, part)
    signature = hmac.new(key_bytes, to_sign.encode("utf-8"),
                         hashlib.sha256).hexdigest()
    authorization = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                     f"SignedHeaders={';'.join(names)}, "
                     f"Signature={signature}")
    return authorization, canonical


def read_suite_request(path):
    """(method, path, query, headers, body) of a suite .req file."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, target, _ = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[:1] in (" ", "\t") and headers:
            # Obsolete line folding: the continuation joins with a space.
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    req_path, _, query = target.partition("?")
    return method, req_path, query, headers, body.encode("utf-8")


def cmd_vector(args):
    import os
    case = os.path.basename(os.path.normpath(args.case))
    method, path, query, headers, body = read_suite_request(
        os.path.join(args.case, case + ".req"))
    authorization, canonical = sign(method, path, query, headers, body,
                                    SUITE_KEY, SUITE_SECRET, "us-east-1",
                                    "service", SUITE_TIME)
    sys.stdout.write(canonical if args.creq else authorization)
    return 0


def header_pair(text):
    name, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"not 'Name: value': {text}")
    return name.strip(), value.strip()


def xml_paths(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None, None
    found, order = {}, []

    def walk(node, prefix):
        tag = node.tag.split("}")[-1]
        path = f"{prefix}/{tag}" if prefix else tag
        order.append(path)
        if len(node) == 0:
            found[path] = node.text or ""
        for child in node:
            walk(child, path)
    walk(root, "")
    return found, order


class Caller:
    def __init__(self, args):
        self.args = args
        url = urllib.parse.urlsplit(args.url)
        self.host = url.netloc
        self.path = url.path or "/"
        self.query = url.query
        self.conn = http.client.HTTPConnection(url.hostname, url.port,
                                               timeout=60)

    def stamp(self):
        args = self.args
        if args.date:
            return args.date
        moment = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=args.skew)
        return moment.strftime("%Y%m%dT%H%M%SZ")

    def send(self, body):
        args = self.args
        stamp = self.stamp()
        content_type = args.content_type or (
            "application/x-www-form-urlencoded; charset=utf-8"
            if body.startswith(b"Action=") else "application/json")
        signed = [("Host", self.host), ("X-Amz-Date", stamp)]
        if body or args.method in ("POST", "PUT", "PATCH"):
            signed.append(("Content-Type", content_type))
        signed.extend(args.header)
        if args.token and not args.token_unsigned:
            signed.append(("X-Amz-Security-Token", args.token))
        sent = list(signed)
        if args.token and args.token_unsigned:
            sent.append(("X-Amz-Security-Token", args.token))
        if not args.no_sign:
            authorization, _ = sign(args.method, self.path, self.query,
                                    signed, body, args.key, args.secret,
                                    args.region, args.service, stamp,
                                    args.scope_date)
            sent.append(("Authorization", authorization))
        for name, value in args.after:
            sent = [(n, v) for n, v in sent if n.lower() != name.lower()]
            sent.append((name, value))
        wire = body if args.send_body is None else args.send_body.encode()
        target = self.path + ("?" + self.query if self.query else "")
        self.conn.putrequest(args.method, target, skip_host=True,
                             skip_accept_encoding=True)
        for name, value in sent:
            self.conn.putheader(name, value)
        self.conn.putheader("Content-Length", str(len(wire)))
        self.conn.endheaders(wire)
        response = self.conn.getresponse()
        data = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, data


def describe(status, headers, data):
    text = data.decode("utf-8", "replace")
    out = {"status": status, "headers": headers}
    try:
        out["body"] = json.loads(text)
    except ValueError:
        out["body"] = text
        if text.lstrip().startswith("<"):
            out["xml"], out["xml_paths"] = xml_paths(text)
    return out


def cmd_call(args):
    caller = Caller(args)
    body = (args.body or "").encode("utf-8")
    if args.repeat:
        statuses, first = [], {}
        started = time.monotonic()
        for n in range(args.repeat):
            if n and args.interval:
                time.sleep(args.interval)
            answer = caller.send(body)
            statuses.append(answer[0])
            first.setdefault(str(answer[0]), describe(*answer))
        print(json.dumps({"statuses": statuses,
                          "seconds": round(time.monotonic() - started, 3),
                          "first": first}))
        return 0
    if args.follow:
        request = json.loads(body or b"{}")
        pages, statuses, ids, found = 0, [], [], []
        started = time.monotonic()
        while True:
            status, headers, data = caller.send(
                json.dumps(request).encode())
            statuses.append(status)
            pages += 1
            if status != 200:
                break
            answer = json.loads(data)
            ids.extend(f["Id"] for f in answer["Findings"])
            if args.findings:
                found.extend(answer["Findings"])
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
        out = {"pages": pages, "statuses": statuses, "ids": ids,
               "seconds": round(time.monotonic() - started, 3)}
        if args.findings:
            out["findings"] = found
        print(json.dumps(out))
        return 0
    print(json.dumps(describe(*caller.send(body))))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    vector = sub.add_parser("vector")
    vector.add_argument("case")
    vector.add_argument("--creq", action="store_true")
    call = sub.add_parser("call")
    call.add_argument("method")
    call.add_argument("url")
    call.add_argument("body", nargs="?")
    call.add_argument("--service", default="securityhub")
    call.add_argument("--region", default="us-east-1")
    call.add_argument("--key", default="AKIDSIMULATOR")
    call.add_argument("--secret", default="simulator-secret-key")
    call.add_argument("--token")
    call.add_argument("--header", type=header_pair, action="append",
                      default=[])
    call.add_argument("--after", type=header_pair, action="append",
                      default=[])
    call.add_argument("--content-type")
    call.add_argument("--skew", type=float, default=0)
    call.add_argument("--date")
    call.add_argument("--scope-date")
    call.add_argument("--token-unsigned", action="store_true")
    call.add_argument("--no-sign", action="store_true")
    call.add_argument("--send-body")
    call.add_argument("--repeat", type=int, default=0)
    call.add_argument("--interval", type=float, default=0)
    call.add_argument("--follow", action="store_true")
    call.add_argument("--findings", action="store_true")
    args = parser.parse_args()
    if args.command == "vector":
        return cmd_vector(args)
    args.method = args.method.upper()
    return cmd_call(args)


if __name__ == "__main__":
    sys.exit(main())
