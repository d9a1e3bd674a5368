#!/usr/bin/env python3
"""Local simulator of the vendor APIs the soarutils tools call.

Tests start it on a free loopback port, point the tools at it, script faults
through the /_sim/ control routes and then check what the tools sent with
GET /_sim/requests. Vendor APIs are modules in simlib/vendors/.

With --tls-cert and --tls-key the simulator speaks HTTPS instead of HTTP on
its port (TLS 1.2 or later); routes and control are the same. The SNS tests
run such an instance as the stand-in for sns.<region>.amazonaws.com.
"""

import argparse
import base64
import ipaddress
import os
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The simulator runs from the source tree; compiled files there would only
# clutter the working copy, so they go to SIM_PYCACHE (tests/run sets it
# under build/), else to the user's cache directory: compiling the vendor
# modules on every start costs more than the rest of the start.
sys.pycache_prefix = os.environ.get("SIM_PYCACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME")
    or os.path.join(os.path.expanduser("~"), ".cache"),
    "soarutils", "sim-pycache")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simlib  # noqa: E402
from simlib import Registry, Request, encode_body  # noqa: E402
from simlib.faults import MALFORMED_BODY, FaultTable, validate  # noqa: E402

# How many bytes a "short_body" answer promises beyond what it sends.
SHORT_BODY_MISSING = 100
# How long a client may take over the TLS handshake.
TLS_HANDSHAKE_S = 5


class Recorder:
    """The log of vendor requests, in arrival order, for test assertions."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def add(self, req, fault_index):
        entry = {"seq": 0, "time": time.time(), "method": req.method,
                 "path": req.path, "query": req.raw_query,
                 "headers": req.header_dict()}
        try:
            entry["body"] = req.body.decode("utf-8")
        except UnicodeDecodeError:
            entry["body_b64"] = base64.b64encode(req.body).decode("ascii")
        if fault_index is not None:
            entry["fault"] = fault_index
        with self._lock:
            entry["seq"] = len(self._entries) + 1
            self._entries.append(entry)

    def list(self, path_prefix="", method=""):
        with self._lock:
            return [e for e in self._entries
                    if e["path"].startswith(path_prefix)
                    and (not method or e["method"] == method.upper())]

    def clear(self):
        with self._lock:
            self._entries.clear()


recorder = Recorder()
faults = FaultTable()
control = Registry()


@control.route("GET", r"/_sim/health")
def health(req):
    return 200, {}, {"ok": True}


@control.route("GET,DELETE", r"/_sim/requests")
def requests_log(req):
    if req.method == "DELETE":
        recorder.clear()
        return 200, {}, {"ok": True}
    path, method = req.query.get("path", ""), req.query.get("method", "")
    return 200, {}, recorder.list(path, method)


@control.route("GET,POST,DELETE", r"/_sim/faults")
def fault_rules(req):
    if req.method == "GET":
        return 200, {}, faults.list()
    if req.method == "DELETE":
        faults.clear()
        return 200, {}, {"ok": True}
    rule = req.json()
    error = validate(rule)
    if error:
        return 400, {}, {"error": error}
    return 200, {}, {"ok": True, "index": faults.add(rule)}


@control.route("POST", r"/_sim/reset")
def reset(req):
    recorder.clear()
    faults.clear()
    simlib.state.clear()
    simlib.reset_vendors()
    return 200, {}, {"ok": True}


@control.route("GET", r"/_sim/state")
def settings(req):
    return 200, {}, dict(simlib.state)


@control.route("POST", r"/_sim/state/(?P<name>[^/]+)")
def set_setting(req):
    simlib.state[req.params["name"]] = req.json()
    return 200, {}, {"ok": True}


def parse_headers(fp, _class=http.client.HTTPMessage):
    """http.client.parse_headers without the email package's parser.

    The standard one runs every request's header block through
    email.parser, which costs more than everything else the simulator does
    for a request; benchmarks would then measure the simulator.  Same
    limits (100 fields, 64 KiB lines), same result type; obsolete line
    folding continues the previous field.
    """
    msg = _class()
    count = 0
    last = None
    while True:
        line = fp.readline(http.client._MAXLINE + 1)
        if len(line) > http.client._MAXLINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            break
        count += 1
        if count > http.client._MAXHEADERS:
            raise http.client.HTTPException(
                f"got more than {http.client._MAXHEADERS} headers")
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last is not None:
            value = msg[last] + " " + text.strip()
            del msg[last]
            msg[last] = value
            continue
        name, sep, value = text.partition(":")
        if not sep:
            continue
        last = name.strip()
        msg[last] = value.strip()
    return msg


def merge_headers(headers, extra):
    """Apply extra headers over headers, replacing names regardless of case."""
    for name, value in extra.items():
        for old in [k for k in headers if k.lower() == name.lower()]:
            del headers[old]
        headers[name] = value
    return headers


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open between requests, as the vendors' own
    # servers do; the tools' connection reuse is then exercised for real.
    protocol_version = "HTTP/1.1"
    # Real services answer in one segment.  Unbuffered, headers and body
    # would leave in separate small writes, and Nagle's algorithm against
    # the client's delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def version_string(self):
        return "soarutils-sim/1"

    def parse_request(self):
        # A request's latency counts from its arrival, as a server's own
        # response time does, not from when the simulator got round to it.
        self.arrived = time.monotonic()
        return super().parse_request()

    def do_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.answer(400, {}, {"error": "unreadable request body"})
            return
        req = Request(self.command, self.path, self.headers, body)
        if req.path == "/_sim" or req.path.startswith("/_sim/"):
            self.answer(*control.dispatch(req))
            return
        index, rule = faults.pick(req.method, req.path)
        recorder.add(req, index)
        if rule is None:
            self.answer(*simlib.vendor_routes.dispatch(req))
        else:
            self.answer_with_fault(req, rule)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_any
    do_OPTIONS = do_any

    def read_body(self):
        """Read the body, whether sized by Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # Trailer fields carry nothing the simulator needs.
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length)

    def answer_with_fault(self, req, rule):
        if rule.get("latency_ms"):
            left = self.arrived + rule["latency_ms"] / 1000 - time.monotonic()
            if left > 0:
                time.sleep(left)
        if rule.get("reset"):
            # A zero linger turns close() into a TCP reset, which is what a
            # crashed server or a dropping load balancer looks like.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if "status" in rule or "body" in rule or rule.get("malformed"):
            status = rule.get("status", 200)
            headers = {"Content-Type": "application/json"}
            body = rule.get("body")
            if body is None:
                body = MALFORMED_BODY if rule.get("malformed") else {
                    "error": "injected fault", "status": status}
            body = encode_body(headers, body)
        else:
            status, headers, body = simlib.vendor_routes.dispatch(req)
        merge_headers(headers, rule.get("headers", {}))
        self.answer(status, headers, body,
                    short=rule.get("short_body", False),
                    drip_ms=rule.get("drip_ms", 0),
                    idle_ms=rule.get("idle_ms", 0))

    def answer(self, status, headers, body, short=False, drip_ms=0, idle_ms=0):
        """Send a response; the keyword arguments are the delivery faults."""
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        # The length is always announced so the connection can be reused; a
        # short body announces more than it sends and then hangs up.
        length = len(body) + (SHORT_BODY_MISSING if short else 0)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if idle_ms:
            # The headers leave now; the body after the stall.
            self.wfile.flush()
            time.sleep(idle_ms / 1000)
        if self.command != "HEAD":
            if drip_ms:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(drip_ms / 1000)
            else:
                self.wfile.write(body)
        if short:
            self.close_connection = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Tools open --jobs connections at once; the default backlog of 5
    # would drop their SYNs and cost each a one-second retransmit.
    request_queue_size = 256
    verbose = False
    # An ssl.SSLContext when serving HTTPS, else None.
    tls = None

    def server_bind(self):
        # HTTPServer.server_bind also looks up the host's name, which may
        # ask a DNS server; the simulator talks to nothing but its clients.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # The handshake runs here, in the connection's own thread, not in
        # accept(): a client that connects and never speaks TLS, or one
        # that refuses the certificate, must not hold up the others.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TLS_HANDSHAKE_S)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except OSError as exc:  # ssl.SSLError and timeouts included
            # A client that does not trust the certificate, or speaks
            # plain HTTP, is a test's business, not a simulator fault.
            if self.verbose:
                print(f"sim: TLS handshake with {client_address[0]}:"
                      f"{client_address[1]} failed: {exc}", file=sys.stderr)
            return
        conn.settimeout(None)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            # wrap_socket took over the socket's descriptor, so the close
            # that socketserver does afterwards would do nothing.
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()

    def handle_error(self, request, client_address):
        # Clients hanging up mid-answer is routine under fault injection, so
        # it is only reported when asked to be verbose; anything else is a
        # simulator bug and always shown.
        hung_up = isinstance(sys.exc_info()[1], ConnectionError)
        if self.verbose or not hung_up:
            super().handle_error(request, client_address)


def write_port_file(path, port):
    """Write the port, renaming so a polling reader never sees half of it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def loopback(text):
    """argparse type: an IPv4 loopback address, never a public one."""
    try:
        if ipaddress.IPv4Address(text).is_loopback:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"not an IPv4 loopback address: {text}")


def tls_context(cert, key):
    """The server side of TLS: 1.2 or later, the given chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def main():
    http.client.parse_headers = parse_headers
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=loopback, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--tls-cert", metavar="FILE",
                        help="serve HTTPS with this PEM certificate chain")
    parser.add_argument("--tls-key", metavar="FILE",
                        help="the private key of --tls-cert")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    simlib.load_vendors()
    server = Server((args.host, args.port), Handler)
    server.verbose = args.verbose
    if args.tls_cert:
        server.tls = tls_context(args.tls_cert, args.tls_key)
    # Turning the signals into SystemExit unwinds serve_forever in the main
    # thread; handler threads are daemons and end with the process.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    if args.port_file:
        write_port_file(args.port_file, server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
