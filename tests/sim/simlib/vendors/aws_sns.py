"""AWS SNS as a subscribed HTTP(S) endpoint sees it (API.md 4): the signing
certificates, the SubscribeURL and UnsubscribeURL, and a sender that
delivers signed messages to an endpoint the way SNS does.

It is meant for the HTTPS simulator (sim.py --tls-cert, sim_start_tls in
tests/helpers/sim.bash), a loopback stand-in for sns.<region>.amazonaws.com:
the URLs it writes into messages are https://<the Host header of the
deliver request>/..., so a receiver that allows that one host fetches its
certificates and confirms its subscriptions here. The certificates come
from a directory made by tests/helpers/sns_pki.sh.

Routes of the SNS stand-in:

    GET /SimpleNotificationService-<NAME>.pem
        The file <pki_dir>/<NAME>.pem as is (NAME: letters, digits, "-" and
        "_"), Content-Type application/x-x509-ca-cert. No such file: 404.
        No pki_dir configured: 500 saying so. Slow or failing certificate
        fetches are fault rules on this path (simlib/faults.py), e.g.
        {"path": "^/SimpleNotificationService-", "latency_ms": 20000}.
        Every fetch is in /_sim/requests like any vendor request, so a test
        can check that a receiver fetched nothing.

    GET /?Action=ConfirmSubscription&TopicArn=ARN&Token=TOKEN
        What a receiver does with SubscribeURL. TOKEN must be one this
        simulator put in a SubscriptionConfirmation or
        UnsubscribeConfirmation it delivered (since the last reset), for
        the same TopicArn. Answers 200 text/xml:
            <ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/
            doc/2010-03-31/"><ConfirmSubscriptionResult><SubscriptionArn>
            TOPIC:UUID</SubscriptionArn></ConfirmSubscriptionResult>
            <ResponseMetadata><RequestId>UUID</RequestId>
            </ResponseMetadata></ConfirmSubscriptionResponse>
        The SubscriptionArn is the one the deliveries to that endpoint carry
        in x-amz-sns-subscription-arn. Errors are the query-API envelope,
        400 text/xml: <ErrorResponse xmlns="..."><Error><Type>Sender</Type>
        <Code>InvalidParameter</Code><Message>Invalid parameter: Token
        </Message></Error><RequestId>..</RequestId></ErrorResponse>, with
        Message "Invalid parameter: TopicArn" for a missing or malformed
        TopicArn, "Invalid parameter: Token" for an unknown or missing
        Token, "Invalid parameter: Topic" for a token of another topic.

    GET /?Action=Unsubscribe&SubscriptionArn=ARN
        What a receiver does with UnsubscribeURL: 200 <UnsubscribeResponse>
        with only ResponseMetadata/RequestId. ARN must look like a
        subscription ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC:ID), else 400
        InvalidParameter "Invalid parameter: SubscriptionArn".

    GET / with another Action: 400 InvalidAction; with an empty one: 400
    MissingAction. GET / without an Action parameter is not SNS's: it
    goes on to the next vendor route for GET / (Elasticsearch's root in
    elastic.py), or answers MissingAction when there is none. POST / stays
    the query endpoint of aws.py.

Documented (SNS API reference and developer guide, API.md 4): the message
fields per type, their order and layout and the HTTP headers (as in the
guide's example deliveries), the string to sign and the signature
algorithms, the ConfirmSubscription and Unsubscribe success bodies, the
query error envelope. From a public bug report whose fix was checked
against AWS: InvalidParameter "Invalid parameter: Token" and "Invalid
parameter: Topic". UNVERIFIED guesses: the Content-Type of the
certificate, the 404 for an unknown certificate, the "TopicArn" and
"SubscriptionArn" messages, InvalidAction and MissingAction on GET /,
confirming a token twice answering the same SubscriptionArn, the form of
tokens (256 hex digits here), the body's lack of a final newline, JSON
escaping in the body (UTF-8 as is, control characters as \\uXXXX;
"ensure_ascii" escapes the rest). Not modelled: MessageAttributes, raw
message delivery, Basic authentication challenges, SNS's own retries
(repeat stands in for them). SNS signs with version "1" unless the topic
asks for "2"; the sender defaults to "2".

Test-only routes (not SNS APIs; under /__aws/ like aws.py's):

    GET, POST /__aws/sns/config
        POST {"pki_dir": DIR}: where certificates and keys are read
        (an existing directory, else 400). GET shows {"pki_dir"}.
        The setting is sns_pki_dir: POST /_sim/state/sns_pki_dir "DIR"
        sets it too, without showing in /_sim/requests (sim_start_tls does
        that). /_sim/reset forgets it.

    GET, DELETE /__aws/sns/confirmations
        Every ConfirmSubscription and Unsubscribe call, in order:
        {"seq", "time", "action", "topic_arn", "token", "subscription_arn",
        "status", "error" (the error code, or null)}. DELETE forgets them
        (so does /_sim/reset).

    POST /__aws/sns/deliver
        Builds one message, signs it as SNS does, and POSTs it to an
        endpoint. Fields (unknown ones are refused, 400):
          endpoint           http(s)://HOST:PORT/PATH, required. An https
                             endpoint must chain to <pki_dir>/ca.pem.
          type               Notification (default), SubscriptionConfirmation
                             or UnsubscribeConfirmation.
          message            Message; required for Notification (unless
                             raw_body); confirmations default to SNS's
                             own texts.
          subject            Subject (Notification only; absent by default).
          topic_arn          default arn:aws:sns:us-east-1:123456789012:MyTopic
          subscription_arn   default TOPIC:<a UUID fixed per endpoint and
                             topic>; sent in x-amz-sns-subscription-arn.
          message_id         default a new UUID.
          timestamp          default now (aws_clock_skew_s applies), as
                             2012-04-26T20:45:04.751Z.
          token              confirmations only; default 256 new hex digits.
                             Either way ConfirmSubscription accepts it.
          signature_version  "1" (SHA1withRSA) or "2" (SHA256withRSA,
                             default).
          cert               NAME: SigningCertURL points at
                             /SimpleNotificationService-NAME.pem here and
                             the key <pki_dir>/NAME.key signs, or
                             <pki_dir>/sns.key when there is none. Default
                             "sns".
          signing_cert_url, subscribe_url, unsubscribe_url
                             replace the URLs (SubscribeURL is signed).
          tamper             {FIELD: VALUE}: set after signing (a new FIELD
                             goes last).
          drop               [FIELD...]: removed after signing and tamper.
          headers            {NAME: VALUE or null}: replace (any case), add
                             or (null) remove HTTP headers, Content-Length
                             and Host included.
          raw_body           send this text instead of the message (the
                             headers still describe type, id and topic).
          ensure_ascii       escape non-ASCII in the body as \\uXXXX.
          repeat             send the same bytes N times (1-50, default 1),
                             each on a new connection, as SNS retries do.
          interval_ms        pause between copies (default 0).
          timeout_ms         per copy, for connecting and for each read
                             (default 5000).
        The request is POST PATH with, in this order:
        x-amz-sns-message-type, x-amz-sns-message-id, x-amz-sns-topic-arn,
        x-amz-sns-subscription-arn (Notification and UnsubscribeConfirmation),
        Content-Length, Content-Type: text/plain; charset=UTF-8, Host,
        Connection: Keep-Alive, User-Agent: Amazon Simple Notification
        Service Agent; the body is the message as SNS lays it out
        ({"Key" : value} indented by 2, no final newline).
        Answers 200 {"results": [{"status", "body", "headers", "error",
        "elapsed_ms"}, ...] (one per copy; status 0 and the error text when
        the endpoint could not be reached or timed out), "message" (the
        object sent, null with raw_body), "body" (the text sent),
        "headers" ([[name, value], ...] sent), "string_to_sign" (null with
        raw_body)}.
"""

import base64
import http.client
import json
import os
import re
import secrets
import ssl
import subprocess
import threading
import time
import uuid
from urllib.parse import quote, urlsplit

from simlib import BadRequest, route, state, vendor_routes
from simlib.vendors import aws

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
DEFAULT_TOPIC = f"arn:aws:sns:us-east-1:{aws.ACCOUNT_ID}:MyTopic"
TYPES = ("Notification", "SubscriptionConfirmation",
         "UnsubscribeConfirmation")
# The signed keys per type, already in byte order.
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp",
                     "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL",
                                 "Timestamp", "Token", "TopicArn", "Type"),
}
SIGNED_KEYS["UnsubscribeConfirmation"] = SIGNED_KEYS[
    "SubscriptionConfirmation"]
DIGESTS = {"1": "-sha1", "2": "-sha256"}
USER_AGENT = "Amazon Simple Notification Service Agent"
CERT_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
TOPIC_ARN_RE = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}")
SUBSCRIPTION_ARN_RE = re.compile(
    r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}:[0-9a-f-]{36}")
MAX_REPEAT = 50
MAX_WAIT_MS = 60000
MAX_ANSWER = 64 * 1024

DELIVER_FIELDS = {
    "endpoint": str, "type": str, "message": str, "subject": str,
    "topic_arn": str, "subscription_arn": str, "message_id": str,
    "timestamp": str, "token": str, "signature_version": str, "cert": str,
    "signing_cert_url": str, "subscribe_url": str, "unsubscribe_url": str,
    "tamper": dict, "drop": list, "headers": dict, "raw_body": str,
    "ensure_ascii": bool, "repeat": int, "interval_ms": int,
    "timeout_ms": int,
}

_lock = threading.Lock()
_tokens = {}          # token -> {"topic_arn", "subscription_arn"}
_confirmations = []


def reset():
    with _lock:
        _tokens.clear()
        _confirmations.clear()


def pki_dir():
    """The configured PKI directory, or None."""
    value = state.get("sns_pki_dir")
    return value if isinstance(value, str) and value else None


# --- the SNS stand-in --------------------------------------------------------

@route("GET", r"/SimpleNotificationService-(?P<name>[^/]*)\.pem")
def signing_cert(req):
    directory = pki_dir()
    if directory is None:
        return 500, {}, {"error": "no PKI directory: POST /__aws/sns/config "
                         "{\"pki_dir\": DIR} first"}
    name = req.params["name"]
    path = os.path.join(directory, f"{name}.pem")
    if not CERT_NAME_RE.fullmatch(name) or not os.path.isfile(path):
        return 404, {"Content-Type": "text/plain"}, "Not Found"
    with open(path, "rb") as f:
        return 200, {"Content-Type": "application/x-x509-ca-cert"}, f.read()


def sns_error(status, code, message):
    rid = aws.request_id()
    body = aws.xml_document("ErrorResponse", XMLNS, [
        ("Error", [("Type", "Sender"), ("Code", code),
                   ("Message", message)]),
        ("RequestId", rid)])
    return status, {"x-amzn-RequestId": rid, "Content-Type": "text/xml"}, body


def sns_response(action, result):
    rid = aws.request_id()
    children = [(f"{action}Result", result)] if result is not None else []
    children.append(("ResponseMetadata", [("RequestId", rid)]))
    body = aws.xml_document(f"{action}Response", XMLNS, children)
    return 200, {"x-amzn-RequestId": rid, "Content-Type": "text/xml"}, body


def record(action, topic_arn, token, subscription_arn, answer):
    error = None
    if answer[0] >= 400:
        match = re.search(r"<Code>([^<]*)</Code>", answer[2])
        error = match.group(1) if match else None
    with _lock:
        _confirmations.append({
            "seq": len(_confirmations) + 1, "time": time.time(),
            "action": action, "topic_arn": topic_arn, "token": token,
            "subscription_arn": subscription_arn, "status": answer[0],
            "error": error})
    return answer


def confirm_subscription(params):
    topic = params.get("TopicArn")
    token = params.get("Token")
    subscription = None
    with _lock:
        known = _tokens.get(token) if token else None
    if not topic or not TOPIC_ARN_RE.fullmatch(topic):
        answer = sns_error(400, "InvalidParameter",
                           "Invalid parameter: TopicArn")
    elif known is None:
        answer = sns_error(400, "InvalidParameter",
                           "Invalid parameter: Token")
    elif known["topic_arn"] != topic:
        answer = sns_error(400, "InvalidParameter",
                           "Invalid parameter: Topic")
    else:
        subscription = known["subscription_arn"]
        answer = sns_response("ConfirmSubscription",
                              [("SubscriptionArn", subscription)])
    return record("ConfirmSubscription", topic, token, subscription, answer)


def unsubscribe(params):
    subscription = params.get("SubscriptionArn")
    if not subscription or not SUBSCRIPTION_ARN_RE.fullmatch(subscription):
        answer = sns_error(400, "InvalidParameter",
                           "Invalid parameter: SubscriptionArn")
    else:
        answer = sns_response("Unsubscribe", None)
    topic = subscription.rsplit(":", 1)[0] if subscription else None
    return record("Unsubscribe", topic, None, subscription, answer)


def pass_on(req, handler):
    """Answer req by the first route registered after handler that takes
    its path and method; None when there is none."""
    after = False
    for methods, regex, other in vendor_routes.routes:
        if other is handler:
            after = True
            continue
        match = regex.fullmatch(req.path) if after else None
        if match and ("ANY" in methods or req.method in methods):
            req.params = match.groupdict()
            return other(req)
    return None


@route("GET", r"/")
def query_get(req):
    action = req.query.get("Action")
    if action is None:
        # The URLs SNS hands out are on /, and so is another vendor's root.
        answer = pass_on(req, query_get)
        if answer is not None:
            return answer
    if action == "ConfirmSubscription":
        return confirm_subscription(req.query)
    if action == "Unsubscribe":
        return unsubscribe(req.query)
    if not action:
        return sns_error(400, "MissingAction", "Missing Action")
    return sns_error(400, "InvalidAction",
                     f"Could not find operation {action} for version "
                     "2010-03-31")


# --- test-only routes --------------------------------------------------------

@route("GET,POST", r"/__aws/sns/config")
def config(req):
    if req.method == "POST":
        body = req.json()
        directory = body.get("pki_dir") if isinstance(body, dict) else None
        if not isinstance(directory, str) or not os.path.isdir(directory):
            raise BadRequest("pki_dir must name an existing directory")
        state["sns_pki_dir"] = os.path.abspath(directory)
    return 200, {}, {"pki_dir": pki_dir()}


@route("GET,DELETE", r"/__aws/sns/confirmations")
def confirmations(req):
    with _lock:
        if req.method == "DELETE":
            _confirmations.clear()
            return 200, {}, {"ok": True}
        return 200, {}, list(_confirmations)


def check_spec(spec):
    """Refuse a deliver request that is not what the docstring lists."""
    if not isinstance(spec, dict):
        raise BadRequest("the deliver request must be a JSON object")
    for name, value in spec.items():
        kind = DELIVER_FIELDS.get(name)
        if kind is None:
            raise BadRequest(f"unknown deliver field: {name}")
        if isinstance(value, bool) != (kind is bool) \
                or not isinstance(value, kind):
            raise BadRequest(f"deliver field {name} has the wrong type")
    kind = spec.get("type", "Notification")
    if kind not in TYPES:
        raise BadRequest(f"type must be one of {', '.join(TYPES)}")
    if kind == "Notification" and "message" not in spec \
            and "raw_body" not in spec:
        raise BadRequest("a Notification needs a message")
    if kind != "Notification" and "subject" in spec:
        raise BadRequest("only a Notification has a subject")
    if spec.get("signature_version", "2") not in DIGESTS:
        raise BadRequest("signature_version must be \"1\" or \"2\" (use "
                         "tamper for anything else)")
    if not CERT_NAME_RE.fullmatch(spec.get("cert", "sns")):
        raise BadRequest("cert must be a name like sns or sns-expired")
    if not all(isinstance(f, str) for f in spec.get("drop", [])):
        raise BadRequest("drop must list field names")
    if not all(v is None or isinstance(v, str)
               for v in spec.get("headers", {}).values()):
        raise BadRequest("header values must be strings or null")
    if not 1 <= spec.get("repeat", 1) <= MAX_REPEAT:
        raise BadRequest(f"repeat must be 1 to {MAX_REPEAT}")
    if not 0 <= spec.get("interval_ms", 0) <= MAX_WAIT_MS:
        raise BadRequest(f"interval_ms must be 0 to {MAX_WAIT_MS}")
    if not 1 <= spec.get("timeout_ms", 1) <= MAX_WAIT_MS:
        raise BadRequest(f"timeout_ms must be 1 to {MAX_WAIT_MS}")
    url = urlsplit(spec.get("endpoint", ""))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise BadRequest("endpoint must be an http:// or https:// URL")


def subscription_arn_for(endpoint, topic):
    """The subscription of endpoint to topic: the same on every delivery."""
    return f"{topic}:{uuid.uuid5(uuid.NAMESPACE_URL, f'{topic} {endpoint}')}"


def string_to_sign(message):
    keys = SIGNED_KEYS[message["Type"]]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message)


def sign(text, version, key):
    """Base64 RSA PKCS#1 v1.5 signature of text, by the openssl CLI."""
    try:
        done = subprocess.run(
            ["openssl", "dgst", DIGESTS[version], "-sign", key],
            input=text.encode("utf-8"), capture_output=True, timeout=30,
            check=False)
    except OSError as exc:
        raise BadRequest(f"cannot run openssl: {exc}") from None
    if done.returncode != 0:
        raise BadRequest(f"signing with {key} failed: "
                         f"{done.stderr.decode('utf-8', 'replace')}")
    return base64.b64encode(done.stdout).decode("ascii")


def build_message(spec, host, directory):
    """The message SNS would send for spec, signed and then tampered with;
    returns (message, string to sign, message id, subscription ARN)."""
    kind = spec.get("type", "Notification")
    topic = spec.get("topic_arn", DEFAULT_TOPIC)
    subscription = spec.get("subscription_arn") or subscription_arn_for(
        spec["endpoint"], topic)
    base = f"https://{host}"
    cert = spec.get("cert", "sns")
    key = os.path.join(directory, f"{cert}.key")
    if not os.path.isfile(key):
        key = os.path.join(directory, "sns.key")
    message_id = spec.get("message_id") or str(uuid.uuid4())
    message = {"Type": kind, "MessageId": message_id}
    if kind == "Notification":
        message["TopicArn"] = topic
        if "subject" in spec:
            message["Subject"] = spec["subject"]
        message["Message"] = spec["message"]
    else:
        token = spec.get("token") or secrets.token_hex(128)
        with _lock:
            _tokens[token] = {"topic_arn": topic,
                              "subscription_arn": subscription}
        message["Token"] = token
        message["TopicArn"] = topic
        if kind == "SubscriptionConfirmation":
            default = (f"You have chosen to subscribe to the topic {topic}.\n"
                       "To confirm the subscription, visit the SubscribeURL "
                       "included in this message.")
        else:
            default = (f"You have chosen to deactivate subscription "
                       f"{subscription}.\nTo cancel this operation and "
                       "restore the subscription, visit the SubscribeURL "
                       "included in this message.")
        message["Message"] = spec.get("message", default)
        message["SubscribeURL"] = spec.get("subscribe_url") or (
            f"{base}/?Action=ConfirmSubscription&TopicArn="
            f"{quote(topic, safe=':')}&Token={quote(token, safe='')}")
    message["Timestamp"] = spec.get("timestamp") or aws.iso(aws.now(),
                                                            millis=True)
    version = spec.get("signature_version", "2")
    message["SignatureVersion"] = version
    text = string_to_sign(message)
    message["Signature"] = sign(text, version, key)
    message["SigningCertURL"] = spec.get("signing_cert_url") or (
        f"{base}/SimpleNotificationService-{cert}.pem")
    if kind == "Notification":
        message["UnsubscribeURL"] = spec.get("unsubscribe_url") or (
            f"{base}/?Action=Unsubscribe&SubscriptionArn="
            f"{quote(subscription, safe=':')}")
    for name, value in spec.get("tamper", {}).items():
        message[name] = value
    for name in spec.get("drop", []):
        message.pop(name, None)
    return message, text, message_id, subscription


def delivery_headers(spec, message_id, topic, subscription, body, url):
    kind = spec.get("type", "Notification")
    headers = [("x-amz-sns-message-type", kind),
               ("x-amz-sns-message-id", message_id),
               ("x-amz-sns-topic-arn", topic)]
    if kind != "SubscriptionConfirmation":
        headers.append(("x-amz-sns-subscription-arn", subscription))
    headers += [("Content-Length", str(len(body))),
                ("Content-Type", "text/plain; charset=UTF-8"),
                ("Host", url.netloc.rpartition("@")[2]),
                ("Connection", "Keep-Alive"),
                ("User-Agent", USER_AGENT)]
    for name, value in spec.get("headers", {}).items():
        at = [i for i, (old, _) in enumerate(headers)
              if old.lower() == name.lower()]
        if value is None:
            headers = [h for i, h in enumerate(headers) if i not in at]
        elif at:
            headers[at[0]] = (name, value)
            headers = [h for i, h in enumerate(headers) if i not in at[1:]]
        else:
            headers.append((name, value))
    return headers


def post_once(url, headers, body, timeout, directory):
    """One POST; {"status", "body", "headers", "error", "elapsed_ms"}, with
    status 0 when the endpoint could not be reached or timed out."""
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme == "https":
        cafile = os.path.join(directory, "ca.pem") if directory else None
        context = ssl.create_default_context(
            cafile=cafile if cafile and os.path.isfile(cafile) else None)
        conn = http.client.HTTPSConnection(url.hostname, port,
                                           timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(url.hostname, port,
                                          timeout=timeout)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    started = time.monotonic()
    result = {"status": 0, "body": "", "headers": {}, "error": None}
    try:
        conn.putrequest("POST", target, skip_host=True,
                        skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(body)
        answer = conn.getresponse()
        result["headers"] = {k.lower(): v for k, v in answer.getheaders()}
        result["body"] = answer.read(MAX_ANSWER).decode("utf-8", "replace")
        result["status"] = answer.status
    except (OSError, http.client.HTTPException) as exc:
        result["status"] = 0
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return result


@route("POST", r"/__aws/sns/deliver")
def deliver(req):
    spec = req.json()
    check_spec(spec)
    directory = pki_dir()
    host = req.headers.get("Host")
    url = urlsplit(spec["endpoint"])
    topic = spec.get("topic_arn", DEFAULT_TOPIC)
    if "raw_body" in spec:
        message = text = None
        message_id = spec.get("message_id") or str(uuid.uuid4())
        subscription = spec.get("subscription_arn") or subscription_arn_for(
            spec["endpoint"], topic)
        body = spec["raw_body"].encode("utf-8")
    else:
        if directory is None:
            raise BadRequest("no PKI directory: POST /__aws/sns/config "
                             "{\"pki_dir\": DIR} first")
        if not host:
            raise BadRequest("the deliver request has no Host header")
        message, text, message_id, subscription = build_message(
            spec, host, directory)
        body = json.dumps(message, indent=2, separators=(",", " : "),
                          ensure_ascii=spec.get("ensure_ascii", False)
                          ).encode("utf-8")
    headers = delivery_headers(spec, message_id, topic, subscription, body,
                               url)
    timeout = spec.get("timeout_ms", 5000) / 1000
    results = []
    for copy in range(spec.get("repeat", 1)):
        if copy and spec.get("interval_ms"):
            time.sleep(spec["interval_ms"] / 1000)
        results.append(post_once(url, headers, body, timeout, directory))
    return 200, {}, {"results": results, "message": message,
                     "body": body.decode("utf-8"),
                     "headers": [list(h) for h in headers],
                     "string_to_sign": text}
