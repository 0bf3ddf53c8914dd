#!/usr/bin/env python3
# An auditor's own verifier of a phi audit export, written from phi-audit(5)
# alone (hashlib, json and the cryptography package's Ed25519), so that the
# page is proven to be enough and phictl's verdict is checked against code
# that shares none of its parts. Prints "ok RECORDS TREE_SIZE ORIGIN" or
# "bad SEQ" / "bad -" and exits 0 / 1.
# Usage: audit_verify_ref.py FILE VERIFIER_KEY
import base64
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

KEYS = ["actor", "command", "event", "expires", "host", "reason", "request_id", "rhost", "role", "rule",
        "seq", "service", "target", "time_us", "tty", "user"]
NUMBERS = {"seq", "time_us", "expires"}


class Bad(Exception):
    def __init__(self, seq, why):
        super().__init__(why)
        self.seq = seq


def h(b):
    return hashlib.sha256(b).digest()


def node(left, right):
    return h(b"\x01" + left + right)


def esc(s):
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def canonical(rec):
    parts = []
    for k in KEYS:
        if k not in rec:
            continue
        v = rec[k]
        parts.append(esc(k) + ":" + (str(v) if k in NUMBERS else esc(v)))
    return ("{" + ",".join(parts) + "}").encode()


def check_record(raw):
    rec = json.loads(raw.decode("utf-8"))
    if not isinstance(rec, dict) or set(rec) - set(KEYS) or not {"seq", "time_us", "event"} <= set(rec):
        raise ValueError("fields")
    for k, v in rec.items():
        if k in NUMBERS:
            if type(v) is not int or not 0 <= v < 2**64 or (k == "expires" and v == 0):
                raise ValueError("number")
        elif not isinstance(v, str) or not v or len(v.encode()) > (1024 if k == "command" else 512):
            raise ValueError("text")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", rec["event"]):
        raise ValueError("event")
    if canonical(rec) != raw or len(raw) > 8192:
        raise ValueError("not canonical")
    return rec


def root(edge):
    # edge: list of (bit, hash), highest bit first
    r = None
    for _, x in reversed(edge):
        r = x if r is None else node(x, r)
    return r if r is not None else h(b"")


def append(edge, size, leaf_hash):
    x, i = leaf_hash, 0
    while size >> i & 1:
        _, left = edge.pop()
        x = node(left, x)
        i += 1
    edge.append((i, x))


def consistency(first, second, first_root, second_root, proof):
    # RFC 9162 2.1.4.2
    if first == 0 or first >= second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def open_note(note, vkey):
    name, keyid, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    assert raw[0] == 1 and len(raw) == 33 and h(name.encode() + b"\n" + raw)[:4].hex() == keyid
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    b = note.encode()
    split = b.rindex(b"\n\n")
    text, sigs = b[:split + 1], b[split + 2:]
    good = False
    for line in sigs.split(b"\n")[:-1]:
        assert line.startswith("\u2014 ".encode())
        sname, sb64 = line[4:].decode().split(" ", 1)
        sig = base64.b64decode(sb64, validate=True)
        if sname == name and sig[:4].hex() == keyid:
            pub.verify(sig[4:], text)
            good = True
    if not good:
        raise InvalidSignature()
    lines = text.decode().split("\n")[:-1]
    return lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)


def verify(data, vkey):
    lines = data.split(b"\n")
    if lines[-1] != b"":
        raise Bad(None, "no final newline")
    lines = lines[:-1]
    head = json.loads(lines[0])
    first = head["first"]
    bits = [i for i in range(63, -1, -1) if first >> i & 1]
    if list(head) != ["phi-audit-export", "first", "left"] or len(bits) != len(head["left"]):
        raise Bad(None, "header")
    edge = [(b, base64.b64decode(x)) for b, x in zip(bits, head["left"])]
    size = covered = first
    origin = None
    last_cp = False
    for idx, line in enumerate(lines[1:], start=2):
        if line.startswith(b'{"hash":"'):
            last_cp = False
            stated, leaf = line[9:53], line[62:-1]
            try:
                rec = check_record(leaf)
            except ValueError:
                raise Bad(size, "record")
            if rec["seq"] != size:
                raise Bad(size, "missing or out of order")
            lh = h(b"\x00" + leaf)
            if base64.b64encode(lh) != stated:
                raise Bad(size, "changed")
            append(edge, size, lh)
            size += 1
        elif line.startswith(b'{"checkpoint":'):
            last_cp = True
            cp = json.loads(line)
            blame = covered if covered < size else None
            try:
                o, n, r = open_note(cp["checkpoint"], vkey)
            except (InvalidSignature, AssertionError, ValueError):
                raise Bad(blame, "signature")
            if origin is not None and o != origin:
                raise Bad(blame, "origin")
            origin = o
            proof = [base64.b64decode(x) for x in cp["proof"]]
            if n < size:
                raise Bad(n, "checkpoint too small")
            if n == size:
                if proof or root(edge) != r:
                    raise Bad(blame, "root")
            elif not proof:
                raise Bad(size if idx == len(lines) else blame, "truncated")
            elif idx != len(lines) or not consistency(size, n, root(edge), r, proof):
                raise Bad(blame, "consistency")
            covered = size
            tree = n
        else:
            raise Bad(size, "line")
    if not last_cp:
        raise Bad(covered if covered < size else None, "not covered")
    return size - first, tree, origin


def main():
    data = open(sys.argv[1], "rb").read()
    vkey = open(sys.argv[2]).read().strip()
    try:
        records, tree, origin = verify(data, vkey)
    except Bad as e:
        print("bad", "-" if e.seq is None else e.seq)
        return 1
    print("ok", records, tree, origin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
