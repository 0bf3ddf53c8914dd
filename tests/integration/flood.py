#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A hostile local client of phiaccessd's request socket (server_limits_test.sh).

flood.py refuse SOCKET SECONDS
    Sends requests this caller may not make (sync, which is for root and
    admins) on one connection, as fast as the daemon answers, for SECONDS;
    reconnects when the daemon closes. Prints "refusals N seconds S".
flood.py activate SOCKET SECONDS
    The same with the activation of a token the caller does not have (a
    wrong code): each one reaches the TOTP verifier unless the daemon
    refuses it first as too many. Prints "busy B other O seconds S": B
    refused as too many (EBUSY), O answered by the verifier.
flood.py hold SOCKET N
    Opens N connections and keeps them open, sending nothing. Once all are
    open it prints "open N"; when stdin closes it reports, for every
    connection the daemon closed, the ERROR frame it got first: prints
    "closed C open O" and then each distinct message once.
"""
import errno
import os
import select
import socket
import struct
import sys
import time

from phiwire import frame, read_frame

PHI_MSG_ERROR = 0x0002
PHI_MSG_SYNC = 0x0101
PHI_MSG_TOTP_ACTIVATE = 0x0303
PHI_TAG_ERRNO = 1
PHI_TAG_MESSAGE = 2
PHI_TAG_CODE = 4


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def refuse(path, seconds):
    request = frame(PHI_MSG_SYNC)
    refusals = 0
    start = time.monotonic()
    s = connect(path)
    while time.monotonic() - start < seconds:
        try:
            s.sendall(request)
            reply = read_frame(s)
        except OSError:
            reply = None
        if reply is None:
            s.close()
            s = connect(path)
            continue
        msg_type, fields = reply
        if msg_type == PHI_MSG_ERROR and fields.get(PHI_TAG_ERRNO) == errno.EACCES:
            refusals += 1
        else:
            sys.exit("unexpected reply %r" % (reply,))
    elapsed = time.monotonic() - start
    s.close()
    print("refusals %d seconds %.3f" % (refusals, elapsed))


def activate(path, seconds):
    request = frame(PHI_MSG_TOTP_ACTIVATE, [(PHI_TAG_CODE, "000000")])
    busy = other = 0
    start = time.monotonic()
    s = connect(path)
    while time.monotonic() - start < seconds:
        try:
            s.sendall(request)
            reply = read_frame(s)
        except OSError:
            reply = None
        if reply is None:
            s.close()
            s = connect(path)
            continue
        msg_type, fields = reply
        if msg_type != PHI_MSG_ERROR:
            sys.exit("unexpected reply %r" % (reply,))
        if fields.get(PHI_TAG_ERRNO) == errno.EBUSY:
            busy += 1
        else:
            other += 1
    elapsed = time.monotonic() - start
    s.close()
    print("busy %d other %d seconds %.3f" % (busy, other, elapsed))


def hold(path, n):
    conns = [connect(path) for _ in range(n)]
    print("open %d" % n, flush=True)
    sys.stdin.read()
    closed, messages = 0, []
    for s in conns:
        readable, _, _ = select.select([s], [], [], 0)
        if not readable:
            continue
        try:
            reply = read_frame(s)
        except OSError:
            reply = None
        closed += 1
        text = "(closed without a frame)"
        if reply and reply[0] == PHI_MSG_ERROR:
            text = "errno %d: %s" % (reply[1].get(PHI_TAG_ERRNO, 0), reply[1].get(PHI_TAG_MESSAGE, ""))
        if text not in messages:
            messages.append(text)
    print("closed %d open %d" % (closed, n - closed))
    for text in messages:
        print(text)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "refuse":
        refuse(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "activate":
        activate(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
    os._exit(0)


if __name__ == "__main__":
    main()
