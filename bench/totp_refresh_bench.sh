#!/usr/bin/env bash
# totp_refresh_bench: what a full directory refresh does to logins.
#
# In private namespaces (tests/lib/harness.bash): a journald, a slapd holding
# USERS users (tests/lib/gen-ldif, default 160,000), and phiaccessd in paged
# mode (as with Active Directory, which has no RFC 4533). Once the directory is
# loaded, 2*K of its users are enrolled through the protocol (`totp_bench
# enroll`); then, in the same run, one client sends a steady stream of logins
# (an AUTH every --interval-ms on the PAM socket, each code valid and never
# used, so each answer waits for its watermark's commit):
#   idle       K logins with nothing else going on: the peer;
#   refresh    K more logins while `phictl sync --full` replaces every identity
#              (paged search, validation, the identity file's one write
#              transaction, nesting, the NSS snapshot).
# K is chosen so that the stream outlasts the refresh (from the initial load's
# duration). Prints p50/p99/max of each, and the longest round with the
# refresh against the target: within 50 ms of the longest without it.
#
# Usage: bench/totp_refresh_bench.sh [--users N] [--interval-ms MS]
#        defaults 160000, 10. Needs root (namespaces); build dir $PHI_BUILD_DIR
#        (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
phi_harness_init "$@"

users=160000 interval=10
while [ $# -gt 0 ]; do
    case "$1" in
        --users) users=$2; shift 2 ;;
        --interval-ms) interval=$2; shift 2 ;;
        *) phi_die "usage: totp_refresh_bench.sh [--users N] [--interval-ms MS]" ;;
    esac
done

BENCH=$PHI_BUILD_DIR/bench/totp_bench
CTL=$PHI_BUILD_DIR/phiaccessd/phictl
DIR=$PHI_TMP/phi
SOCKET=$DIR/run/socket
PAM_SOCKET=$DIR/run/pam
SECRETS=$DIR/secrets
suffix=dc=example,dc=org
mkdir -p "$DIR/run"
chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$DIR" "$DIR/run"

# shellcheck disable=SC2119 # no options: the default journald
phi_journald_start
phi_log "directory with $users users"
phi_gen_ldif --suffix "$suffix" --users "$users" --groups 100 >"$PHI_TMP/users.ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"
rm -f "$PHI_TMP/users.ldif"

printf 'root:x:0:0:root:/root:/bin/bash\n' >"$DIR/passwd"
printf 'root:x:0:\nphi-admins:x:3000:\n' >"$DIR/group"
cat >"$DIR/phiaccessd.conf" <<CONF
[ldap]
uri = $PHI_LDAP_URI
base = $suffix
user_base = ou=people,$suffix
group_base = ou=groups,$suffix
tls = none
sync = paged
refresh_interval = 1d
network_timeout = 60s

[store]
path = $DIR/phi.db

[daemon]
socket = $SOCKET
pam_socket = $PAM_SOCKET
snapshot = $DIR/nss.snapshot
passwd_file = $DIR/passwd
group_file = $DIR/group

[totp]
master_key = $DIR/master.key
create_master_key = yes
issuer = phi bench
CONF
chmod 0600 "$DIR/phiaccessd.conf"

ctl() { "$CTL" --socket "$SOCKET" "$@"; }
status_get() { ctl --json status | jq -r --arg k "$1" '.[$k]'; }
loaded() { [ "$(status_get full_refreshes)" -ge 1 ] 2>/dev/null; }
result_field() { # LINE KEY
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }

phi_spawn phiaccessd "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --foreground --config "$DIR/phiaccessd.conf"
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$SOCKET" || phi_die "phiaccessd did not start"
phi_wait_for --timeout 600 --interval 0.5 --what "the initial paged load" loaded ||
    phi_die "the initial load did not finish"
load_ms=$(status_get last_refresh_ms)
# A stream twice as long as the load, so that it covers the refresh; at most
# 25 s, so that every precomputed code stays inside the window.
k=$((2 * load_ms / interval))
[ "$k" -ge 500 ] || k=500
[ $((k * interval)) -le 25000 ] || k=$((25000 / interval))

phi_log "enrolling $((2 * k)) users through the protocol"
enroll=$("$BENCH" enroll --socket "$SOCKET" --first 1 --count $((2 * k)) --threads 16 --out "$SECRETS")
[ "$(result_field "$enroll" errors)" = 0 ] || phi_die "enrolment failed: $enroll"
# The activation used the current step; the runs send the next one's codes.
now=$(date +%s)
sleep $((30 - now % 30 + 1))

phi_log "idle: $k logins, one every $interval ms"
idle=$("$BENCH" auth --socket "$PAM_SOCKET" --secrets "$SECRETS" --first 1 --count "$k" --threads 1 \
    --interval-ms "$interval" --label idle)
phi_log "refresh: $k logins during phictl sync --full"
cur=$(phi_journal_cursor)
t0=$(date +%s%N)
ctl sync --full >"$PHI_TMP/sync.out" 2>&1 &
sync_pid=$!
during=$("$BENCH" auth --socket "$PAM_SOCKET" --secrets "$SECRETS" --first $((k + 1)) --count "$k" --threads 1 \
    --interval-ms "$interval" --label refresh)
t1=$(date +%s%N)
if kill -0 "$sync_pid" 2>/dev/null; then covered=no; else covered=yes; fi
wait "$sync_pid" || phi_die "phictl sync --full failed: $(cat "$PHI_TMP/sync.out")"
ev=$(phi_journal_wait --first --timeout 10 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ldap_sync \
    PHI_OUTCOME=ok)
msg=$(printf '%s\n' "$ev" | phi_json_field MESSAGE)
# When the refresh ended, in seconds after the stream began (the journal's clock).
ended=$(awk -v e="$(printf '%s\n' "$ev" | phi_json_field __REALTIME_TIMESTAMP)" -v t="$t0" \
    'BEGIN { printf "%.1f", (e * 1000 - t) / 1e9 }')

for r in "$idle" "$during"; do
    if [ "$(result_field "$r" errors)" != 0 ] || [ "$(result_field "$r" unexpected)" != 0 ]; then
        phi_log "WARNING: $(result_field "$r" label): errors or unexpected answers: $r"
    fi
done
printf '\ntotp_refresh_bench: %s directory users (paged), one client, a login every %s ms\n' "$users" "$interval"
printf '  %-10s %7s %10s %10s %10s %8s %8s\n' run logins p50_ms p99_ms max_ms refused errors
for r in "$idle" "$during"; do
    printf '  %-10s %7s %10s %10s %10s %8s %8s\n' "$(result_field "$r" label)" "$(result_field "$r" n)" \
        "$(ms "$(result_field "$r" p50_us)")" "$(ms "$(result_field "$r" p99_us)")" \
        "$(ms "$(result_field "$r" max_us)")" "$(result_field "$r" refused)" "$(result_field "$r" errors)"
done
max_idle=$(result_field "$idle" max_us)
max_during=$(result_field "$during" max_us)
delta=$(awk -v a="$max_during" -v b="$max_idle" 'BEGIN { printf "%.1f", (a - b) / 1000 }')
verdict=$(awk -v d="$delta" 'BEGIN { print (d <= 50 ? "within" : "NOT within") }')
printf '  longest round with the refresh: %s ms, without: %s ms: %s ms more, %s the target (50 ms)\n' \
    "$(ms "$max_during")" "$(ms "$max_idle")" "$delta" "$verdict"
printf '  the stream of logins (%.1f s) %s the refresh\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')" \
    "$([ "$covered" = yes ] && echo covered || echo 'ended before the end of')"
printf '  slowest round began %s s into the idle stream, %s s into the refresh stream; the refresh ended %s s in\n' \
    "$(result_field "$idle" max_at_s)" "$(result_field "$during" max_at_s)" "$ended"
printf '  %s\n' "$msg"
phi_pass "benchmark ran"
