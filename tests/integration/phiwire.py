# SPDX-License-Identifier: GPL-2.0-or-later
"""phiaccessd's wire protocol (common/include/phi/wire.h, docs/wire-protocol.md),
spoken by hand in the tests that send what pam_phi and phictl never send:
access_wire.py, audit_cursor.py, flood.py."""
import struct

VERSION = 1
KIND_STR, KIND_U64 = 1, 2
MSG_OK, MSG_ERROR = 0x0001, 0x0002
TAG_ERRNO, TAG_MESSAGE = 1, 2


def frame(msg_type, fields=()):
    """A request frame; each field (tag, value) is a text, or a u64 when an int."""
    body = struct.pack(">BHH", VERSION, msg_type, len(fields))
    for tag, value in fields:
        if isinstance(value, int):
            body += struct.pack(">HBHQ", tag, KIND_U64, 8, value)
        else:
            v = value.encode()
            body += struct.pack(">HBH", tag, KIND_STR, len(v)) + v
    return struct.pack(">I", len(body)) + body


def recv_exact(s, n):
    """n bytes, or None when the daemon closed the connection first."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(s):
    """(type, {tag: first value}) or None at end of file."""
    head = recv_exact(s, 4)
    if head is None:
        return None
    body = recv_exact(s, struct.unpack(">I", head)[0])
    if body is None:
        return None
    _, msg_type, nfields = struct.unpack_from(">BHH", body, 0)
    off, fields = 5, {}
    for _ in range(nfields):
        tag, kind, length = struct.unpack_from(">HBH", body, off)
        off += 5
        value = body[off:off + length]
        off += length
        fields.setdefault(tag, struct.unpack(">Q", value)[0] if kind == KIND_U64 else
                          value.decode(errors="replace"))
    return msg_type, fields


def describe(s):
    """The next reply as a line: "OK", "ERROR errno: message" or "type 0x...";
    EOFError when the connection ended first."""
    got = read_frame(s)
    if got is None:
        raise EOFError("the daemon closed the connection")
    msg_type, fields = got
    if msg_type == MSG_OK:
        return "OK"
    if msg_type == MSG_ERROR:
        return "ERROR %s: %s" % (fields.get(TAG_ERRNO), fields.get(TAG_MESSAGE))
    return "type 0x%04x" % msg_type
