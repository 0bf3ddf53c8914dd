#!/usr/bin/env bash
# Proves tests/lib/harness.bash, which every other integration test relies on:
# namespaces, gen-ldif, slapd (load, schema, syncprov, writes, restarts),
# journald (native, stdout and syslog paths, cursors), phi_ns_run, the
# assertion helpers, and -- checked from outside the namespaces -- that no
# process outlives a test (even one killed with SIGKILL) and that the host's
# /etc, /dev and journal directories are unchanged.
#
# Usage: harness_test.sh
#        harness_test.sh --victim READY_FILE   (internal: a run the test kills -9)
# Harness functions take optional arguments; calling them with none is fine.
# shellcheck disable=SC2119
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"

mode=${1:-test}
suffix=dc=example,dc=org

# What a test could change on the host. Existence only for the journal paths:
# on a host with its own journald their contents change all the time.
host_state() {
    find /etc -xdev -printf '%p %s %T@ %m %U:%G %l\n' 2>/dev/null | LC_ALL=C sort | sha256sum
    find /etc -xdev -type f -readable -exec sha256sum {} + 2>/dev/null | LC_ALL=C sort | sha256sum
    local p
    for p in /dev/log /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal \
        /var/log/journal /etc/pam.d/phi-harness-test; do
        if [ -e "$p" ] || [ -L "$p" ]; then
            printf '%s present %s\n' "$p" "$(stat -c '%F %i' "$p")"
        else
            printf '%s absent\n' "$p"
        fi
    done
}

# --------------------------------------------------------------------------
# Victim mode: starts daemons, reports, and waits to be killed with SIGKILL.
if [ "$mode" = --victim ]; then
    phi_harness_init "$@"
    ready=$2
    phi_gen_ldif --suffix "$suffix" --users 3 --groups 1 >"$PHI_TMP/victim.ldif"
    phi_slapd_start "$suffix" "$PHI_TMP/victim.ldif"
    phi_journald_start
    sleep 3600 &
    printf '%s\n%s\n' "$PHI_RUN_DIR" "$(readlink /proc/self/ns/pid)" >"$ready.tmp"
    mv "$ready.tmp" "$ready"
    sleep 60
    phi_fail "victim was not killed within 60 s"
fi

# --------------------------------------------------------------------------
# Outer part: runs on the host, before and after the namespaced run.
phi_outer_before() {
    HOST_BEFORE=$(host_state)
}

phi_outer_after() {
    local rc=$1
    phi_assert_eq "$rc" 0 "namespaced part exited 0"
    phi_assert_eq "$(host_state)" "$HOST_BEFORE" \
        "host /etc (names, sizes, mtimes, modes, contents), /dev/log and journal dirs unchanged"
    phi_assert_eq "$(pgrep -af -- "$PHI_RUN_DIR" || true)" "" "no process mentions the run directory"
    phi_assert_eq "$(phi_outer_leftovers)" "" "no process is left in the test's pid namespace"
    phi_check "inner part removed \$PHI_TMP" test ! -e "$PHI_RUN_DIR/tmp"

    # A test killed with SIGKILL runs no clean-up code of its own; the pid
    # namespace must still take its daemons down with it.
    local ready=$PHI_RUN_DIR/victim.ready vlog=$PHI_RUN_DIR/victim.log vpid vrc=0
    local vdir vns pid1="" p procs
    bash "$(readlink -f "$0")" --victim "$ready" >"$vlog" 2>&1 &
    vpid=$!
    if ! phi_wait_for --timeout 30 --what "victim to start" test -s "$ready"; then
        phi_fail "victim run did not start" "$(cat "$vlog")"
    fi
    { read -r vdir; read -r vns; } <"$ready"
    procs=$(phi_pids_in_pidns "$vns")
    phi_assert_contains "$procs" "slapd" "victim runs slapd"
    phi_assert_contains "$procs" "systemd-journald" "victim runs journald"
    for p in $(printf '%s\n' "$procs" | awk '{print $1}'); do
        if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null; then
            pid1=$p
        fi
    done
    phi_assert_ne "$pid1" "" "found the victim's PID 1 from the host"
    kill -KILL "$pid1"
    wait "$vpid" || vrc=$?
    phi_assert_ne "$vrc" 0 "killed victim reports failure"
    phi_assert_eq "$(phi_pids_in_pidns "$vns")" "" "after kill -9 of its PID 1 no process of the victim is left"
    phi_assert_eq "$(pgrep -af -- "$vdir" || true)" "" "no slapd or other process mentions the victim's run directory"
    phi_check "victim's run directory removed by its outer part" test ! -e "$vdir"
}

phi_harness_init "$@"

# --------------------------------------------------------------------------
# Namespaces
phi_assert_eq "$$" 1 "test runs as PID 1 of its own pid namespace"
phi_assert_eq "$(ip -o link show | awk -F': ' '{print $2}')" "lo" "network namespace has only lo"
phi_assert_match "$(ip -o link show lo)" '<[^>]*[<,]UP[,>]' "lo is up"
phi_assert_eq "$TMPDIR" "$PHI_TMP" "TMPDIR points into the test's temp dir"
phi_check "PHI_TMP is inside the run directory" test -d "$PHI_RUN_DIR/tmp"

# Processes the test leaves behind on purpose: the exit trap must end them,
# including one that is stopped and one the harness never heard of.
is_sleep() { [ "$(readlink "/proc/$1/exe")" = "$(command -v sleep)" ]; }
phi_spawn sleeper sleep 3600
sleep 3600 &
sleep 3600 &
# Stop it only once it is sleep: a fork of this shell stopped before its exec
# would still carry this shell's traps.
phi_wait_for --timeout 5 is_sleep $!
kill -STOP $!

# --------------------------------------------------------------------------
# gen-ldif
ldif=$PHI_TMP/small.ldif
gen_args=(--suffix "$suffix" --users 50 --groups 5 --members-per-group 4 --nested --cycle --user-in-groups 5)
phi_gen_ldif "${gen_args[@]}" >"$ldif"
phi_assert_eq "$(phi_gen_ldif "${gen_args[@]}" | sha256sum)" "$(sha256sum <"$ldif")" "gen-ldif output is deterministic"
phi_assert_eq "$(grep -c '^dn: uid=' "$ldif")" 51 "LDIF has 50 users + biguser"
phi_assert_eq "$(grep -c '^dn: cn=grp' "$ldif")" 5 "LDIF has 5 groups"
phi_check_fails "gen-ldif refuses --cycle with one group" phi_gen_ldif --suffix "$suffix" --users 3 --groups 1 --cycle
phi_check_fails "gen-ldif refuses an unknown option" phi_gen_ldif --suffix "$suffix" --users 3 --bogus

big=$PHI_TMP/big.ldif
_phi_now
t0=$_PHI_NOW_US
phi_gen_ldif --suffix "$suffix" --users 100000 --groups 2000 --members-per-group 3 --user-in-groups 2000 >"$big"
_phi_now
phi_log "gen-ldif: 100,000 users + 2,000 groups in $(((_PHI_NOW_US - t0) / 1000)) ms, $(wc -c <"$big") bytes"
phi_assert_eq "$(grep -c '^uidNumber: ' "$big")" 100001 "100,000-user LDIF has 100,001 posixAccounts"
phi_assert_eq "$(grep -c '^memberUid: biguser$' "$big")" 2000 "biguser is in 2,000 groups"

# --------------------------------------------------------------------------
# slapd
phi_slapd_start "$suffix" "$ldif"
phi_assert_eq "$PHI_LDAP_URI" "ldap://127.0.0.1:3890" "default URI"
phi_assert_eq "$PHI_LDAP_ROOTDN" "cn=admin,$suffix" "rootdn"
first_pid=$PHI_SLAPD_PID

count_users() {
    phi_ldapsearch -b "ou=people,$PHI_LDAP_BASE" -s one '(objectClass=posixAccount)' 1.1 | grep -c '^dn:' || true
}
phi_assert_eq "$(count_users)" 51 "ldapsearch returns all 51 loaded users"
phi_assert_eq "$(phi_ldapsearch -b "ou=groups,$PHI_LDAP_BASE" '(&(objectClass=groupOfNames)(objectClass=posixGroup))' 1.1 | grep -c '^dn:')" 5 \
    "all 5 groups are groupOfNames + posixGroup (rfc2307bis schema)"
grp1=$(phi_ldapsearch '(cn=grp00001)' memberUid member gidNumber)
phi_assert_contains "$grp1" "memberUid: user00001" "grp00001 lists memberUid user00001"
phi_assert_contains "$grp1" "memberUid: biguser" "grp00001 lists memberUid biguser"
phi_assert_contains "$grp1" "gidNumber: 20001" "grp00001 has gidNumber 20001"
phi_assert_contains "$(phi_ldapsearch '(cn=grp00002)' member)" "member: cn=grp00001,ou=groups,$suffix" \
    "nested: grp00001 is a member of grp00002"
phi_assert_contains "$(phi_ldapsearch '(cn=grp00004)' member)" "member: cn=grp00005,ou=groups,$suffix" "cycle: grp00005 in grp00004"
phi_assert_contains "$(phi_ldapsearch '(cn=grp00005)' member)" "member: cn=grp00004,ou=groups,$suffix" "cycle: grp00004 in grp00005"
phi_assert_eq "$(phi_ldapsearch '(uidNumber=10007)' uid | grep '^uid:')" "uid: user00007" "lookup by uidNumber"
# Critical control: fails unless the syncprov overlay serves RFC 4533.
sync_out=$(ldapsearch -x -H "$PHI_LDAP_URI" -b "$PHI_LDAP_BASE" -E '!sync=ro' '(uid=user00001)' 1.1)
phi_assert_contains "$sync_out" "SyncState control" "syncprov answers a refreshOnly sync search"
phi_assert_contains "$sync_out" "cookie: rid=" "sync search returns a cookie"

phi_ldapmodify >/dev/null <<EOF
dn: uid=user00001,ou=people,$suffix
changetype: modify
replace: loginShell
loginShell: /bin/zsh
EOF
phi_assert_contains "$(phi_ldapsearch '(uid=user00001)' loginShell)" "loginShell: /bin/zsh" "rootdn can modify an entry"

phi_slapd_restart
phi_assert_ne "$PHI_SLAPD_PID" "$first_pid" "restart runs a new slapd"
phi_assert_eq "$(count_users)" 51 "users survive a restart"
phi_assert_contains "$(phi_ldapsearch '(uid=user00001)' loginShell)" "loginShell: /bin/zsh" "a change made after the load survives a restart"

phi_slapd_stop
phi_check_fails "stopped directory refuses connections" \
    ldapsearch -x -H "$PHI_LDAP_URI" -o nettimeout=2 -b '' -s base 1.1
phi_slapd_restart
phi_assert_eq "$(count_users)" 51 "users are back after stop + start"
phi_slapd_restart --kill
phi_assert_contains "$(phi_ldapsearch '(uid=user00001)' loginShell)" "loginShell: /bin/zsh" "data survives slapd being killed with SIGKILL"

phi_slapd_start --name big --port 3891 "$suffix" "$big"
phi_assert_eq "$(phi_ldapsearch -b "ou=people,$suffix" -s one -E pr=1000/noprompt '(objectClass=posixAccount)' 1.1 | grep -c '^dn:')" 100001 \
    "second instance on port 3891: paged search returns all 100,001 users"
phi_assert_eq "$(phi_ldapsearch '(memberUid=biguser)' 1.1 | grep -c '^dn:')" 2000 "biguser's 2,000 groups are found"
phi_slapd_stop big

# --------------------------------------------------------------------------
# journald
phi_journald_start
token=hello-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
systemd-cat -t phi-harness-test echo "$token"
json=$(phi_journal_json SYSLOG_IDENTIFIER=phi-harness-test)
phi_assert_eq "$(printf '%s\n' "$json" | wc -l)" 1 "exactly one entry from phi-harness-test"
phi_assert_eq "$(printf '%s\n' "$json" | phi_json_field MESSAGE)" "$token" "journal MESSAGE is the token"
phi_assert_eq "$(printf '%s\n' "$json" | phi_json_field SYSLOG_IDENTIFIER)" "phi-harness-test" "journal SYSLOG_IDENTIFIER"
phi_assert_eq "$(printf '%s\n' "$json" | phi_json_field _TRANSPORT)" "stdout" "systemd-cat came in over the stdout stream"

logger -t phi-harness-syslog "$token via syslog"
json=$(phi_journal_wait --timeout 5 SYSLOG_IDENTIFIER=phi-harness-syslog)
phi_assert_eq "$(printf '%s\n' "$json" | phi_json_field MESSAGE)" "$token via syslog" "syslog(3) via the private /dev/log reaches the journal"
phi_assert_eq "$(printf '%s\n' "$json" | phi_json_field _TRANSPORT)" "syslog" "it came in over /dev/log"

awkward='quote " backslash \ amp & tab	é ✓'
systemd-cat -t phi-harness-escape printf '%s\n' "$awkward"
phi_assert_eq "$(phi_journal_json SYSLOG_IDENTIFIER=phi-harness-escape | phi_json_field MESSAGE)" "$awkward" \
    "phi_json_field unescapes quotes, backslashes and UTF-8"

systemd-cat -t phi-harness-cursor echo before
cursor=$(phi_journal_cursor)
systemd-cat -t phi-harness-cursor echo first
systemd-cat -t phi-harness-cursor echo second
phi_assert_eq "$(phi_journal_json --after "$cursor" SYSLOG_IDENTIFIER=phi-harness-cursor | phi_json_field MESSAGE)" \
    $'first\nsecond' "--after CURSOR with a match keeps the first entry after the cursor"
phi_assert_eq "$(phi_journal_wait --first --timeout 5 --after "$cursor" SYSLOG_IDENTIFIER=phi-harness-cursor |
    phi_json_field MESSAGE)" first "phi_journal_wait --first prints the oldest match only"
phi_assert_eq "$(phi_journal_json SYSLOG_IDENTIFIER=phi-harness-nothing)" "" "no entries for an unused identifier"

# --------------------------------------------------------------------------
# phi_ns_run
nss=$PHI_TMP/nsswitch.conf
printf '# phi-harness-test %s\npasswd: files\ngroup: files\n' "$token" >"$nss"
host_nss=$(sha256sum </etc/nsswitch.conf)
phi_assert_eq "$(phi_ns_run --bind "$nss:/etc/nsswitch.conf" -- cat /etc/nsswitch.conf)" "$(cat "$nss")" \
    "phi_ns_run shows the bound nsswitch.conf inside"
phi_assert_eq "$(sha256sum </etc/nsswitch.conf)" "$host_nss" "nsswitch.conf outside phi_ns_run is unchanged"

permit=$PHI_TMP/pam-permit
deny=$PHI_TMP/pam-deny
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' >"$permit"
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$deny"
svc=/etc/pam.d/phi-harness-test
phi_assert_eq "$(phi_ns_run --bind "$permit:$svc" --bind "$nss:/etc/nsswitch.conf" -- cat "$svc" /etc/nsswitch.conf)" \
    "$(cat "$permit" "$nss")" "a new PAM service and a bound file together"
phi_check "the rest of /etc/pam.d is still there next to a new service" \
    phi_ns_run --bind "$permit:$svc" -- test -e /etc/pam.d/other
phi_check "new PAM service does not appear outside phi_ns_run" test ! -e "$svc"
phi_check "pamtester authenticates through the new pam_permit service" \
    phi_ns_run --bind "$permit:$svc" -- timeout 10 pamtester phi-harness-test root authenticate
phi_check_fails "pamtester is refused by a pam_deny service" \
    phi_ns_run --bind "$deny:$svc" -- timeout 10 pamtester phi-harness-test root authenticate
rc=0
phi_ns_run -- sh -c 'exit 7' || rc=$?
phi_assert_eq "$rc" 7 "phi_ns_run passes the command's exit status through"

# --------------------------------------------------------------------------
# Helpers
if phi_wait_for --timeout 0.3 false; then
    phi_fail "phi_wait_for should time out on false"
else
    phi_pass "phi_wait_for gives up after its timeout"
fi
(sleep 0.2 && touch "$PHI_TMP/late") &
phi_check "phi_wait_for sees a condition that becomes true" phi_wait_for --timeout 5 test -e "$PHI_TMP/late"
rc=0
out=$(bash -c 'source "$1"; phi_assert_eq actual expected "demo check"' _ "$PHI_LIB_DIR/harness.bash" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "a failing assertion exits 1"
phi_assert_contains "$out" "harness: FAIL: demo check" "a failing assertion names the check"
phi_assert_contains "$out" "expected: 'expected'" "a failing assertion shows what was expected"
phi_assert_contains "$out" "actual:   'actual'" "a failing assertion shows what it got"
