#!/usr/bin/env python3
# Asks phiaccessd's request socket for audit pages that phictl never asks for
# (integration.audit_query): a query's "page two" from seq 0 with no seal, or
# with a made-up one, and an export's retry (end, no next) with a made-up
# seal. Each would read the log without its first, journaled, page. Prints one
# line per request: "NAME OK" or "NAME ERROR errno: message".
#
# Usage: audit_cursor.py SOCKET
import socket
import sys

from phiwire import describe, frame

TAG_KEY, TAG_NUMBER = 15, 25
MSG_AUDIT_QUERY, MSG_AUDIT_EXPORT = 0x0500, 0x0501


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
            print(name, describe(s))
        except (OSError, EOFError) as e:
            print(name, "FAILED", e)
        s.close()


if __name__ == "__main__":
    main()
