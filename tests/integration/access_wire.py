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
import sys

from phiwire import describe, frame

TAG_USER, TAG_SERVICE, TAG_STATE, TAG_SESSION = 3, 5, 20, 28
MSG_ACCOUNT, MSG_SESSION = 0x0201, 0x0202


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
            print(what, describe(s))
        except (OSError, EOFError) as e:
            print(what, "FAILED", e)
        s.close()


if __name__ == "__main__":
    main()
