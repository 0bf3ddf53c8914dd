#!/usr/bin/env bash
# phiaccessd --check-config: every problem of a broken file is reported as
# FILE:LINE: message, exit 1; a good file prints "ok" and exits 0. Also: a
# config file that others can write is refused, the daemon will not start
# with a broken file, and not a second time on the same store.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

dir=$PHI_TMP/conf
mkdir -p "$dir"
printf 'secret\n' >"$dir/bindpw"
chmod 600 "$dir/bindpw"

good=$dir/good.conf
cat >"$good" <<CONF
[ldap]
uri = ldap://127.0.0.1:3890 ldap://localhost:3891
base = dc=example,dc=org
tls = none
bind_dn = cn=reader,dc=example,dc=org
bind_password_file = $dir/bindpw
[store]
path = $dir/phi.db
[daemon]
socket = $dir/socket
pam_socket = $dir/pam
CONF
chmod 644 "$good"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$good" 2>&1) || rc=$?
phi_assert_eq "$rc" 0 "a good config passes"
phi_assert_eq "$(head -n 1 <<<"$out")" "$good: ok" "and says ok"

check_bad() { # NAME EXPECTED-LINE-REGEX  (file content on stdin)
    local f=$dir/$1.conf rc=0 out
    cat >"$f"
    chmod 644 "$f"
    out=$("$PHI_DAEMON" --check-config --config "$f" 2>&1) || rc=$?
    phi_assert_eq "$rc" 1 "$1: exit status 1"
    phi_assert_match "$out" "$2" "$1: reported with file and line"
}

check_bad missing-base "^$dir/missing-base.conf:1: \\[ldap\\] needs base=" <<'CONF'
[ldap]
uri = ldap://127.0.0.1:3890
tls = none
CONF

check_bad bad-uri "^$dir/bad-uri.conf:3: uri 'http://example.org' must start with ldap:// or ldaps://" <<'CONF'
[ldap]
base = dc=example,dc=org
uri = http://example.org
tls = none
CONF

check_bad unknown-key "^$dir/unknown-key.conf:4: unknown key 'colour' in \\[ldap\\]" <<'CONF'
[ldap]
uri = ldap://127.0.0.1:3890
base = dc=example,dc=org
colour = blue
tls = none
CONF

# Several problems in one file: each on its own line.
f=$dir/many.conf
cat >"$f" <<'CONF'
[ldap]
uri = ldap://127.0.0.1:3890
base = not a dn
min_uid = -5
refresh_interval = soon
[daemon]
admin_group = bad group!
[nonsense]
x = 1
CONF
chmod 644 "$f"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$f" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "many problems: exit 1"
phi_assert_match "$out" "many.conf:3: base 'not a dn' is not a valid distinguished name" "bad DN on line 3"
phi_assert_match "$out" "many.conf:4: min_uid must be a whole number" "bad number on line 4"
phi_assert_match "$out" "many.conf:5: refresh_interval must be a duration" "bad duration on line 5"
phi_assert_match "$out" "many.conf:7: admin_group 'bad group!' is not a valid group name" "bad group on line 7"
phi_assert_match "$out" "many.conf:9: \\[nonsense\\] is not a known section" "unknown section on line 9"

# Plain LDAP to another host needs an explicit opt-in.
check_bad insecure "insecure.conf:1: tls = none with non-local uri ldap://ldap.example.org" <<'CONF'
[ldap]
uri = ldap://ldap.example.org
base = dc=example,dc=org
tls = none
CONF
check_bad default-tls-ldaps "uri ldaps://ldap.example.org is ldaps:// \\(use tls = ldaps\\)" <<'CONF'
[ldap]
uri = ldaps://ldap.example.org
base = dc=example,dc=org
CONF

# Trust: world-writable config, group-writable, symlink, world-readable password.
ww=$dir/world-writable.conf
cp "$good" "$ww"
chmod 666 "$ww"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$ww" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "world-writable config: exit 1"
phi_assert_match "$out" "^$ww:0: is writable by group or others; refusing to trust it" "world-writable config: reported"
chmod 664 "$ww"
phi_check_fails "group-writable config is refused too" "$PHI_DAEMON" --check-config --config "$ww"
ln -s "$good" "$dir/link.conf"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$dir/link.conf" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "symlinked config: exit 1"
phi_assert_contains "$out" "symbolic link" "symlinked config: reported"
chmod 644 "$dir/bindpw"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$good" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "world-readable bind password: exit 1"
phi_assert_match "$out" "good.conf:6: bind_password_file $dir/bindpw: holds a secret but is readable by others" \
    "world-readable bind password: reported at its line"
chmod 600 "$dir/bindpw"

# A line longer than the limit is an error, not two lines.
{ printf '[ldap]\nuri = ldap://127.0.0.1\nbase = dc=example,dc=org\ntls = none\nuser_filter = (uid='; head -c 5000 /dev/zero | tr '\0' a; printf ')\n'; } >"$dir/long.conf"
chmod 644 "$dir/long.conf"
rc=0; out=$("$PHI_DAEMON" --check-config --config "$dir/long.conf" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "overlong line: exit 1"
phi_assert_match "$out" "long.conf:5: line is longer than 4096 bytes" "overlong line: reported at its line"

# The daemon refuses to start with a broken file and names the problem.
rc=0; out=$(timeout 10 "$PHI_DAEMON" --config "$dir/unknown-key.conf" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "daemon with a broken config exits 1"
phi_assert_contains "$out" "unknown key 'colour'" "and says why"

# The shipped example stays valid (with its password file pointed at a real one).
ex=$dir/example.conf
sed "s|^bind_password_file = .*|bind_password_file = $dir/bindpw|" \
    "$PHI_SOURCE_DIR/phiaccessd/phiaccessd.conf.example" >"$ex"
chmod 644 "$ex"
phi_check "phiaccessd.conf.example passes --check-config" "$PHI_DAEMON" --check-config --config "$ex"

# phictl without a daemon: exit 3 and a clear message.
rc=0; out=$("$PHI_CTL" --socket "$dir/no-such-socket" status 2>&1) || rc=$?
phi_assert_eq "$rc" 3 "phictl with no daemon exits 3"
phi_assert_contains "$out" "cannot reach phiaccessd" "and says so"
rc=0; "$PHI_CTL" --socket "$dir/no-such-socket" frobnicate >/dev/null 2>&1 || rc=$?
phi_assert_eq "$rc" 2 "unknown verb: exit 2"
rc=0; "$PHI_CTL" --socket "$dir/no-such-socket" sync --fast >/dev/null 2>&1 || rc=$?
phi_assert_eq "$rc" 2 "bad sync option: exit 2"

# Socket activation: the daemon serves the socket systemd passes and binds none
# of its own. (The directory in this config is not running; status still works.)
if command -v systemd-socket-activate >/dev/null; then
    phi_spawn activated systemd-socket-activate -l "$dir/activated.sock" \
        "$PHI_DAEMON" --foreground --config "$good"
    activated=$PHI_LAST_PID
    phi_check "socket-activated daemon answers on the passed socket" phi_wait_for --timeout 10 \
        "$PHI_CTL" --socket "$dir/activated.sock" status
    phi_check "and did not bind its configured path" test ! -e "$dir/socket"
    phi_assert_eq "$("$PHI_CTL" --socket "$dir/activated.sock" --json status | jq -r .daemon)" running \
        "status through the activated socket"
    phi_check "the PAM socket it was not passed is bound from the config" test -S "$dir/pam"
    # The reachability check looks at the socket systemd passed, not the
    # configured path (which this daemon never bound): here $dir is private to
    # root, which the daemon reports, naming the directory.
    chmod 0700 "$dir"
    phi_stop_pid "$activated"
    phi_spawn activated1b systemd-socket-activate -l "$dir/activated.sock" \
        "$PHI_DAEMON" --foreground --config "$good"
    activated=$PHI_LAST_PID
    phi_check "re-activated, it answers" phi_wait_for --timeout 10 "$PHI_CTL" --socket "$dir/activated.sock" status
    phi_check "and warns that others cannot search the passed socket's directory" \
        grep -q "cannot reach the request socket: the directory $(realpath "$dir") is not searchable by others (mode 0700)" \
        "$PHI_TMP/activated1b.log"
    phi_check_fails "having checked the passed socket, not the configured path" \
        grep -q "cannot check who may reach" "$PHI_TMP/activated1b.log"
    chmod 0755 "$dir"
    phi_stop_pid "$activated"
    # As the units pass them: the request socket named main, the PAM socket pam.
    phi_spawn activated2 systemd-socket-activate -l "$dir/main2.sock" -l "$dir/pam2.sock" --fdname=main:pam \
        "$PHI_DAEMON" --foreground --config "$good"
    activated=$PHI_LAST_PID
    phi_check "with two named sockets the daemon answers on main" phi_wait_for --timeout 10 \
        "$PHI_CTL" --socket "$dir/main2.sock" status
    phi_check "and binds neither configured path" test ! -e "$dir/socket" -a ! -e "$dir/pam"
    # This config has no master key: the PAM socket answers every login with why.
    out=$("$PHI_CTL" --socket "$dir/pam2.sock" status 2>&1 || true)
    phi_assert_contains "$out" "no master key" "the passed PAM socket is served (no master key: refused, with the reason)"
    phi_stop_pid "$activated"
    phi_spawn activated3 systemd-socket-activate -l "$dir/main3.sock" -l "$dir/odd.sock" --fdname=main:odd \
        "$PHI_DAEMON" --foreground --config "$good"
    # systemd-socket-activate starts the daemon at the first connection.
    phi_wait_for --timeout 10 test -S "$dir/main3.sock" || phi_fail "systemd-socket-activate did not listen"
    "$PHI_CTL" --socket "$dir/main3.sock" status >/dev/null 2>&1 || true
    phi_check "a socket with a name the daemon does not know stops it" phi_wait_for --timeout 10 \
        grep -q "systemd passed a socket named odd" "$PHI_TMP/activated3.log"
fi

# A master key the daemon may create but cannot: the reason is specific (a
# missing directory; a read-only one, as /etc is under the shipped unit), not
# "create_master_key is off". Logins are refused; identities are still served.
for case in missing readonly; do
    keydir=$dir/keys-$case
    if [ "$case" = readonly ]; then
        mkdir -p "$keydir"
        mount --bind "$keydir" "$keydir"
        mount -o remount,bind,ro "$keydir"
    fi
    conf=$dir/key-$case.conf
    { cat "$good"; printf '[totp]
master_key = %s/master.key
create_master_key = yes
' "$keydir"; } >"$conf"
    phi_spawn "key-$case" "$PHI_DAEMON" --foreground --config "$conf"
    pid=$PHI_LAST_PID
    phi_check "with an uncreatable key ($case) the daemon still answers" phi_wait_for --timeout 10 \
        "$PHI_CTL" --socket "$dir/socket" status
    want="absent, and it cannot be created: its directory does not exist"
    [ "$case" = readonly ] && want="its file system is read-only to the daemon (phiaccessd.service has ProtectSystem=strict)"
    phi_assert_contains "$(cat "$PHI_TMP/key-$case.log")" "$want" "the CRIT message says why the key was not created ($case)"
    phi_assert_not_contains "$(cat "$PHI_TMP/key-$case.log")" "create_master_key is off" \
        "and does not claim creation is off ($case)"
    phi_check "no key appeared ($case)" test ! -e "$keydir/master.key"
    phi_stop_pid "$pid"
done

# One daemon per store: a second one started beside the first (an admin's
# foreground run next to the service) stops at once with the reason, and
# neither takes over the first one's sockets nor removes them on its way out.
phi_spawn first "$PHI_DAEMON" --foreground --config "$good"
first=$PHI_LAST_PID
phi_check "the first daemon answers" phi_wait_for --timeout 10 "$PHI_CTL" --socket "$dir/socket" status
inode=$(stat -c %i "$dir/socket")
rc=0
timeout 20 "$PHI_DAEMON" --foreground --config "$good" >"$PHI_TMP/second.log" 2>&1 || rc=$?
phi_assert_eq "$rc" 1 "a second daemon on the same store exits 1"
phi_assert_contains "$(cat "$PHI_TMP/second.log")" "another phiaccessd (pid $first) uses the store $dir/phi.db" \
    "and names the one already running"
phi_assert_eq "$(stat -c %i "$dir/socket")" "$inode" "the first daemon's socket is untouched"
phi_check "and the first daemon still answers on it" "$PHI_CTL" --socket "$dir/socket" status
phi_check "its PAM socket is still there" test -S "$dir/pam"
phi_stop_pid "$first"
phi_spawn next "$PHI_DAEMON" --foreground --config "$good"
next=$PHI_LAST_PID
phi_check "once the first has stopped, another may start" phi_wait_for --timeout 10 \
    "$PHI_CTL" --socket "$dir/socket" status
phi_stop_pid "$next"

# The catalog parses and has one entry per PHI_EVENT of SPEC.md, with the ids
# the daemon sends (events.h).
cat_root=$PHI_TMP/catroot
mkdir -p "$cat_root/usr/lib/systemd/catalog" "$cat_root/var/lib/systemd/catalog"
cp "$PHI_SOURCE_DIR/phiaccessd/phi.catalog" "$cat_root/usr/lib/systemd/catalog/"
journalctl --root="$cat_root" --update-catalog
listed=$(journalctl --root="$cat_root" --list-catalog)
phi_assert_eq "$(grep -c ' phi: ' <<<"$listed")" 30 "the catalog holds 30 phi entries"
for ev in auth_ok auth_fail totp_replay lockout access_granted access_denied session_open session_close \
          elevation_requested elevation_approved elevation_denied elevation_expired elevation_revoked elevation_cancelled \
          sudo_escalation sudo_denied breakglass breakglass_reviewed ticket_issued enrolled token_reset token_revoked policy_reload audit_query \
          ldap_sync checkpoint store_restored session_ended store_unreachable store_recovered; do
    id=$(sed -n "s/.*\"$ev\", \"\\([0-9a-f]*\\)\".*/\\1/p" "$PHI_SOURCE_DIR/phiaccessd/events.h")
    if [ -z "$id" ] || ! grep -q "^$id phi: " <<<"$listed"; then
        phi_fail "event $ev has no catalog entry (id '$id')"
    fi
done
phi_pass "every PHI_EVENT of SPEC.md has its MESSAGE_ID in the catalog"
