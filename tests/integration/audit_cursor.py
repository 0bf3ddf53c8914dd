#!/usr/bin/env python3
# Asks phiaccessd's request socket for audit pages that phictl never asks for
# (integration.audit_query): a query's "page two" from seq 0 with no seal, or
# with a made-up one, and an export's retry (end, no next) with a made-up
# seal. Each would read the log without its first, journaled, page. Prints one
# line per request: "NAME OK" or "NAME ERROR errno: message".
#
# Usage: audit_cursor.py SOCKET
import socket
import struct
import sys

VERSION = 1
KIND_STR, KIND_U64 = 1, 2
TAG_ERRNO, TAG_MESSAGE, TAG_KEY, TAG_NUMBER = 1, 2, 15, 25
MSG_OK, MSG_ERROR, MSG_AUDIT_QUERY, MSG_AUDIT_EXPORT = 0x0001, 0x0002, 0x0500, 0x0501


def frame(msg_type, fields):
    body = struct.pack(">BHH", VERSION, msg_type, len(fields))
    for tag, value in fields:
        if isinstance(value, int):
            body += struct.pack(">HBHQ", tag, KIND_U64, 8, value)
        else:
            v = value.encode()
            body += struct.pack(">HBH", tag, KIND_STR, len(v)) + v
    return struct.pack(">I", len(body)) + body


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("the daemon closed the connection")
        buf += chunk
    return buf


def reply(s):
    (length,) = struct.unpack(">I", read_exact(s, 4))
    body = read_exact(s, length)
    _, msg_type, nfields = struct.unpack(">BHH", body[:5])
    pos, fields = 5, {}
    for _ in range(nfields):
        tag, kind, n = struct.unpack(">HBH", body[pos:pos + 5])
        value = body[pos + 5:pos + 5 + n]
        pos += 5 + n
        fields.setdefault(tag, struct.unpack(">Q", value)[0] if kind == KIND_U64 else
                          value.decode(errors="replace"))
    if msg_type == MSG_OK:
        return "OK"
    if msg_type == MSG_ERROR:
        return "ERROR %s: %s" % (fields.get(TAG_ERRNO), fields.get(TAG_MESSAGE))
    return "type 0x%04x" % msg_type


def main():
    path = sys.argv[1]
    cases = [
        ("query-unsealed", frame(MSG_AUDIT_QUERY, [(TAG_KEY, "next"), (TAG_NUMBER, 0)])),
        ("query-forged", frame(MSG_AUDIT_QUERY, [(TAG_KEY, "next"), (TAG_NUMBER, 0),
                                                 (TAG_KEY, "seal"), (TAG_NUMBER, 0x0123456789abcdef)])),
        ("export-forged", frame(MSG_AUDIT_EXPORT, [(TAG_KEY, "end"), (TAG_NUMBER, 1),
                                                   (TAG_KEY, "seal"), (TAG_NUMBER, 42)])),
    ]
    for name, data in cases:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(path)
        s.sendall(data)
        try:
            print(name, reply(s))
        except (OSError, EOFError) as e:
            print(name, "FAILED", e)
        s.close()


if __name__ == "__main__":
    main()
