#!/usr/bin/env bash
# phiaccessd against a directory that accepts the connection and then fails
# the search: an anonymous bind to a slapd whose size limit (100 entries) is
# below the directory's size (300 users):
#  - paged mode and RFC 4533 mode: the daemon retries with growing delays
#    (a handful of connections in 10 s, not one per millisecond), journals
#    the failure once, naming the size limit and its fix, and counts it in
#    `phictl status` (sync_failures, reconnects, outage, last_error);
#    `phictl sync` fails with the same explanation;
#  - the fix (binding as an account without the limit, by SIGHUP) ends the
#    outage, journaled once as recovered;
#  - with a second URI that has no limit, the daemon moves on to it.
# shellcheck disable=SC2119 # harness functions take optional arguments
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 300 --groups 10 >"$PHI_TMP/dir.ldif"
# The limited server: slapd's own default for anonymous binds is 500 entries;
# 100 keeps the directory small.
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
phi_slapd_stop
# The same entries (with their entryUUIDs, as a replica holds them) for the
# second server below.
slapcat -f "$PHI_SLAPD_DIR/slapd.conf" -l "$PHI_TMP/replica.ldif" 2>/dev/null
sed -i 's/^sizelimit unlimited$/sizelimit 100/' "$PHI_SLAPD_DIR/slapd.conf"
grep -q '^sizelimit 100$' "$PHI_SLAPD_DIR/slapd.conf" || phi_die "could not set slapd's sizelimit"
phi_slapd_restart
limited_uri=$PHI_LDAP_URI
rootdn=$PHI_LDAP_ROOTDN
rootpw_file=$PHI_LDAP_ROOTPW_FILE
n=$(ldapsearch -x -LLL -H "$limited_uri" -b "ou=people,$suffix" '(objectClass=posixAccount)' 1.1 2>/dev/null |
    grep -c '^dn:' || true)
phi_assert_eq "$n" 100 "the test slapd cuts an anonymous search off at 100 entries"
# A second server with the same data and no limit.
phi_slapd_start --name big --port 3891 "$suffix" "$PHI_TMP/replica.ldif"
big_uri=$PHI_LDAP_URI
phi_journald_start
daemon_setup

connects() {
    grep -c 'connected to directory' "$PHI_TMP/phiaccessd.log" || true
}
journal_count() { # CURSOR MATCHES...
    local after=$1
    shift
    phi_journal_json --after "$after" PHI_EVENT=ldap_sync "$@" | grep -c . || true
}

# limited_run MODE: the daemon against the limited server for 10 s.
limited_run() {
    local mode=$1 before cursor c status entry
    DAEMON_EXTRA="sync = $mode"$'\n'"refresh_interval = 1h" daemon_config "$limited_uri"
    before=$(touch "$PHI_TMP/phiaccessd.log"; connects)
    cursor=$(phi_journal_cursor)
    daemon_start
    sleep 10
    status=$(ctl --json status)
    c=$(($(connects) - before))
    phi_log "$mode mode: $c connections to the size-limited directory in 10 s"
    phi_assert_match "$c" '^[2-5]$' "$mode: a failing search is retried with growing delays (2 to 5 connections in 10 s)"
    phi_assert_eq "$(jq -r .sync_mode <<<"$status")" "$mode" "$mode: the mode is in use"
    phi_assert_eq "$(jq -r .outage <<<"$status")" true "$mode: status shows the outage"
    phi_assert_eq "$(jq -r .sync_state <<<"$status")" disconnected "$mode: state disconnected (waiting to retry)"
    phi_assert_eq "$(jq -r .sync_failures <<<"$status")" "$c" "$mode: every failed attempt counted in sync_failures"
    phi_assert_eq "$(jq -r .reconnects <<<"$status")" "$((c - 1))" "$mode: every connection after a failure counted in reconnects"
    phi_assert_contains "$(jq -r .last_error <<<"$status")" "size limit" "$mode: last_error names the size limit"
    phi_assert_contains "$(jq -r .last_error <<<"$status")" "bound anonymously" "$mode: and the anonymous bind"
    phi_assert_eq "$(journal_count "$cursor" PHI_OUTCOME=failed)" 1 "$mode: the failure is journaled once, not per retry"
    entry=$(phi_journal_wait --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=failed)
    phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 3 "$mode: journaled at error"
    phi_assert_contains "$(jq -r .MESSAGE <<<"$entry")" "size limit" "$mode: the message names the size limit"
    phi_assert_contains "$(jq -r .MESSAGE <<<"$entry")" "bind_dn" "$mode: and the fix: bind as an account without it"
    phi_assert_contains "$(jq -r .MESSAGE <<<"$entry")" "olcSizeLimit" "$mode: or raise the server's limit"
    phi_assert_contains "$(jq -r .PHI_REASON <<<"$entry")" "Size limit exceeded" "$mode: PHI_REASON has the server's answer"
}

# ------------------------------------------------------------ paged mode
limited_run paged
rc=0; out=$(ctl sync 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "phictl sync during the limit fails"
phi_assert_contains "$out" "size limit" "and says why"
phi_assert_eq "$(status_get users)" 0 "nothing partial was stored"

# The documented fix: an account the limit does not apply to (the rootdn here).
cursor=$(phi_journal_cursor)
DAEMON_EXTRA="sync = paged"$'\n'"refresh_interval = 1h"$'\n'"bind_dn = $rootdn"$'\n'"bind_password_file = $rootpw_file" \
    daemon_config "$limited_uri"
kill -HUP "$DAEMON_PID"
phi_check "bound as the rootdn, the whole directory loads" wait_users 300 30
phi_assert_eq "$(status_get outage)" false "the outage is over"
phi_assert_eq "$(status_get last_error)" none "last_error cleared"
phi_check "the recovery is journaled" phi_journal_wait --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=recovered
phi_assert_eq "$(journal_count "$cursor" PHI_OUTCOME=recovered)" 1 "once"
entry=$(phi_journal_wait --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=recovered)
phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 5 "recovery journaled at notice"
phi_assert_contains "$(jq -r .PHI_REASON <<<"$entry")" "size limit" "naming what it recovered from"
phi_assert_eq "$(journal_count "$cursor" PHI_OUTCOME=failed)" 0 "and no new failure entry"
daemon_stop

# --------------------------------------------------------- RFC 4533 mode
limited_run syncrepl
phi_assert_eq "$(status_get users)" 300 "the last good data is still served"
phi_check "user show works from it" ctl user show user00250
daemon_stop

# ------------------------------------- failover past the limited server
cursor=$(phi_journal_cursor)
daemon_config "$limited_uri" "$big_uri"
daemon_start
phi_check "with a second URI, the daemon moves on to it" phi_wait_for --timeout 30 status_is directory "$big_uri"
phi_check "and is live there" phi_wait_for --timeout 30 status_is sync_state live
phi_assert_eq "$(status_get outage)" false "no outage left"
phi_assert_eq "$(phi_journal_wait --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=recovered | jq -r .PHI_URI)" \
    "$big_uri" "the recovery names the second URI"
daemon_stop

