#!/usr/bin/env python3
"""first-request.py: time from process start to the first HTTP request
arriving, for two commands, interleaved.

    first-request.py RUNS BODY -- CMD_A ... --vs CMD_B ...

Listens on 127.0.0.1 (an ephemeral port); "{url}" in an argument becomes
http://127.0.0.1:PORT, also in the values of the environment. Each round starts A then B with posix_spawn (stdout
and stderr to /dev/null), takes the time when the whole request (headers
and Content-Length body) has arrived, answers 200 with the JSON text BODY
and "Connection: close", and waits for the process. A command that sends no
request within 10 s, or exits non-zero, ends the run with status 1.

Prints one line: "A_MS B_MS" (medians, milliseconds, 3 decimals).
"""

import os
import socket
import statistics
import sys
import time


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("connection closed inside the header block")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("connection closed inside the body")
        body += chunk


def once(listener, argv, env, answer, devnull):
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1),
               (os.POSIX_SPAWN_DUP2, devnull, 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(f"first-request: {argv[0]} sent no request in 10 s")
    with conn:
        conn.settimeout(10)
        read_request(conn)
        took = time.perf_counter() - start
        conn.sendall(answer)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit(f"first-request: {argv[0]} exited with status {status}")
    return took * 1000.0


def main():
    args = sys.argv[1:]
    if len(args) < 5 or args[2] != "--" or "--vs" not in args:
        sys.exit(__doc__)
    runs, body = int(args[0]), args[1].encode()
    split = args.index("--vs")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(10)
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    cmds = [[a.replace("{url}", url) for a in args[3:split]],
            [a.replace("{url}", url) for a in args[split + 1:]]]
    env = {k: v.replace("{url}", url) for k, v in os.environ.items()}
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(body), body))
    devnull = os.open(os.devnull, os.O_WRONLY)
    times = [[], []]
    for _ in range(3):  # warm-up: page cache, sockets
        for cmd in cmds:
            once(listener, cmd, env, answer, devnull)
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            times[i].append(once(listener, cmd, env, answer, devnull))
    print("%.3f %.3f" % (statistics.median(times[0]),
                         statistics.median(times[1])))


if __name__ == "__main__":
    main()
