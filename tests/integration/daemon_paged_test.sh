#!/usr/bin/env bash
# phiaccessd in paged mode (a slapd without the syncprov overlay, so no
# RFC 4533): a restarted daemon serves what its store holds at once and
# reloads the directory at once, so a change made while it was down arrives
# without `phictl sync` and long before refresh_interval (1h here); between
# reloads it holds no connection to the directory.
# shellcheck disable=SC2016 # bash -c snippets read their arguments as $0, $1
# shellcheck disable=SC2119 # harness functions take optional arguments
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 500 --groups 20 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
phi_slapd_stop
sed -i '/syncprov/d' "$PHI_SLAPD_DIR/slapd.conf"
phi_slapd_restart
phi_journald_start
daemon_setup
DAEMON_EXTRA="refresh_interval = 1h" daemon_config "$PHI_LDAP_URI"

daemon_start
phi_check "the first load completes" wait_users 500
phi_assert_eq "$(status_get sync_mode)" paged "without syncprov the daemon pages"
phi_assert_eq "$(status_get full_refreshes)" 1 "one reload"
phi_check "idle until the next reload" phi_wait_for --timeout 10 status_is sync_state idle
# slapd logs each connection's close at loglevel stats; without it, ask the
# kernel: no TCP connection from the daemon to slapd's port.
phi_check "holding no connection to the directory between reloads" phi_wait_for --timeout 10 \
    bash -c '! ss -Htn state established "( dport = :$0 )" | grep -q .' "$PHI_LDAP_PORT"
daemon_stop

phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00007,ou=people,$suffix
changetype: modify
replace: loginShell
loginShell: /bin/changed-while-down

dn: uid=user00008,ou=people,$suffix
changetype: delete
LDIF
cursor=$(phi_journal_cursor)
daemon_start
phi_assert_eq "$(ctl --json user show user00007 | jq -r .uid)" 10007 "restarted: the stored users are served at once"
phi_check "a change made while the daemon was down arrives without phictl sync" phi_wait_for --timeout 30 \
    bash -c '[ "$("$0" --json user show user00007 | jq -r .shell)" = /bin/changed-while-down ]' "$PHI_CTL"
phi_check "and a deletion" bash -c '! "$0" user show user00008' "$PHI_CTL"
phi_assert_eq "$(status_get users)" 499 "499 users left"
phi_assert_eq "$(status_get full_refreshes)" 1 "by one reload at start"
entry=$(phi_journal_wait --after "$cursor" PHI_EVENT=ldap_sync PHI_OUTCOME=ok)
phi_assert_eq "$(jq -r .PHI_SYNC_MODE <<<"$entry")" paged "the reload is journaled (paged)"
phi_assert_eq "$(jq -r .PHI_USERS <<<"$entry")" 499 "with the new count"
