#!/usr/bin/env bash
# A journald that falls behind does not stall the request socket: refused
# requests are answered and root's phictl status too while journald is
# frozen, because the event loop hands its entries to a writer thread of the
# journal's; once journald runs again every entry is there (journaled +
# suppressed = the refusals), none dropped on the way.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

[ -x /usr/bin/python3 ] || phi_die "/usr/bin/python3 is missing; run ./scripts/setup"
# With 2, journald's socket takes two datagrams and a sender then blocks (set
# before journald makes its sockets; see totp_journal_test.sh).
echo 2 >/proc/sys/net/unix/max_dgram_qlen
totp_setup
totp_daemon_start
cp "$(dirname "$0")/flood.py" "$(dirname "$0")/phiwire.py" "$TOTP_DIR/"
chmod 0644 "$TOTP_DIR/flood.py" "$TOTP_DIR/phiwire.py"

cur=$(phi_journal_cursor)
kill -STOP "$PHI_JOURNALD_PID"
status=0
timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups -- \
    /usr/bin/python3 "$TOTP_DIR/flood.py" refuse "$TOTP_SOCKET" 2 >"$PHI_TMP/flood.out" || status=$?
phi_assert_eq "$status" 0 "with journald frozen, uid 65534's refused requests are all answered"
read -r _ refusals _ seconds <"$PHI_TMP/flood.out"
phi_log "uid 65534 got $refusals refusals in $seconds s with journald frozen"
phi_check "and there were more than a journal socket holds ($refusals)" test "$refusals" -gt 20
phi_check "root's phictl status answers too" timeout 5 "$PHI_BUILD_DIR/phiaccessd/phictl" status
kill -CONT "$PHI_JOURNALD_PID"
totp_daemon_stop
entries=$(phi_journal_json --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=access_denied PHI_CALLER_UID=65534)
single=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON != "rate_limited")] | length')
summed=$(printf '%s\n' "$entries" | jq -s '[.[] | select(.PHI_REASON == "rate_limited") | .PHI_SUPPRESSED | tonumber] | add // 0')
phi_log "journal: $single refusals, $summed more counted in summaries"
phi_assert_eq "$((single + summed))" "$refusals" "once journald runs again, every refusal is accounted for"
