#!/usr/bin/env python3
# Speaks the PAM socket's wire protocol (common/include/phi/wire.h) by hand,
# for what pam_phi itself never sends (integration.access_pam): a
# pam_close_session() naming another user's session, sent together with
# account requests of other logins so that the daemon serves them in one
# round.
#
# Usage: access_wire.py SOCKET CLOSE_USER SESSION_ID ACCOUNT_USER SERVICE N
# Writes the close and N account requests, each on a connection of its own,
# before reading any reply; prints one line per reply: "close OK" or
# "close ERROR errno: message", then "account OK" / "account ERROR ...".
import socket
import struct
import sys

VERSION = 1
KIND_STR = 1
TAG_ERRNO, TAG_MESSAGE, TAG_USER, TAG_SERVICE, TAG_STATE, TAG_SESSION = 1, 2, 3, 5, 20, 28
MSG_OK, MSG_ERROR, MSG_ACCOUNT, MSG_SESSION = 0x0001, 0x0002, 0x0201, 0x0202


def frame(msg_type, fields):
    body = struct.pack(">BHH", VERSION, msg_type, len(fields))
    for tag, value in fields:
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
        fields[tag] = struct.unpack(">Q", value)[0] if kind == 2 else value.decode(errors="replace")
    if msg_type == MSG_OK:
        return "OK"
    if msg_type == MSG_ERROR:
        return "ERROR %s: %s" % (fields.get(TAG_ERRNO), fields.get(TAG_MESSAGE))
    return "type 0x%04x" % msg_type


def main():
    path, close_user, sid, account_user, service, n = sys.argv[1:7]
    requests = [("close", frame(MSG_SESSION, [(TAG_USER, close_user), (TAG_SERVICE, service),
                                              (TAG_STATE, "close"), (TAG_SESSION, sid)]))]
    requests += [("account", frame(MSG_ACCOUNT, [(TAG_USER, account_user), (TAG_SERVICE, service)]))] * int(n)
    conns = []
    for what, data in requests:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(path)
        conns.append((what, s, data))
    # All written first: they wait in the daemon's queue together.
    for _, s, data in conns:
        s.sendall(data)
    for what, s, _ in conns:
        try:
            print(what, reply(s))
        except (OSError, EOFError) as e:
            print(what, "FAILED", e)
        s.close()


if __name__ == "__main__":
    main()
