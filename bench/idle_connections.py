#!/usr/bin/env python3
"""Holds N idle HTTP keep-alive connections open against a server (standard library only).

Opens N TCP connections to HOST:PORT, sends one keep-alive `GET /healthz` on each and reads
its answer, then leaves them idle. Prints `ready OPEN FAILED` on stdout once all are set up.
Reads commands on stdin, one a line:
  check   sends another `GET /healthz` on every connection and prints `alive N closed M`
          (a connection the server closed while idle counts as closed)
  quit    (or end of input) closes everything and exits.
Raises its own RLIMIT_NOFILE to the hard limit first.
Usage: idle_connections.py HOST PORT N
"""
import resource
import selectors
import socket
import sys
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"


def raise_nofile(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(wanted, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def response_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


def round_trip(sel, socks, timeout):
    """Sends REQUEST on every socket and waits for each answer; returns (ok, failed) sets."""
    pending = {}
    failed = set()
    for s in socks:
        try:
            s.sendall(REQUEST)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            failed.add(s)
    ok = set()
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                failed.add(s)
            else:
                pending[s] += chunk
                if not response_complete(pending[s]):
                    continue
                if pending[s].startswith(b"HTTP/1.1 200"):
                    ok.add(s)
                else:
                    failed.add(s)
            sel.unregister(s)
            del pending[s]
    for s in pending:
        sel.unregister(s)
        failed.add(s)
    return ok, failed


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    limit = raise_nofile(count + 64)
    if limit < count + 16:
        print("error RLIMIT_NOFILE %d is too low for %d connections" % (limit, count), flush=True)
        return 2
    sel = selectors.DefaultSelector()
    socks = []
    failed_connect = 0
    batch = 500
    for start in range(0, count, batch):
        opened = []
        for _ in range(min(batch, count - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.connect((host, port))
                s.setblocking(False)
                opened.append(s)
            except OSError:
                failed_connect += 1
                s.close()
        ok, failed = round_trip(sel, opened, 30)
        for s in failed:
            s.close()
        failed_connect += len(failed)
        socks.extend(s for s in opened if s in ok)
    print("ready %d %d" % (len(socks), failed_connect), flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            ok, failed = round_trip(sel, socks, 60)
            for s in failed:
                s.close()
            socks = [s for s in socks if s in ok]
            print("alive %d closed %d" % (len(ok), len(failed)), flush=True)
        elif cmd == "quit":
            break
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
