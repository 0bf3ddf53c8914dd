#!/usr/bin/env bash
# The daemon and its access policy: --check-config reports every problem of a
# broken policy as FILE:LINE: message; the daemon refuses to start on one;
# `phictl policy check` answers allowed/denied with the deciding rule for
# directory users, local users and unknown names (exit 0 / 1); a broken policy
# on reload (phictl reload and SIGHUP) is refused, the old one stays in force
# and both the journal and `phictl status` say so; a good one takes effect
# without a restart; only admins may ask; with no policy file everyone is
# denied.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

# shellcheck disable=SC2119 # it takes optional arguments
phi_journald_start
daemon_setup
ldif=$PHI_TMP/dir.ldif
phi_gen_ldif --suffix dc=example,dc=org --users 6 --groups 2 >"$ldif"
phi_slapd_start dc=example,dc=org "$ldif"
daemon_config "ldap://127.0.0.1:3890"
policy=$DAEMON_DIR/policy.conf
echo "policy = $policy" >>"$DAEMON_CONF"   # [daemon] is the config's last section

cat >"$policy" <<'EOF2'
[access:root]
action = allow
uids = 0
services = *
hosts = *

[access:grp1-ssh]
description = everyone in grp00001 may ssh to the db hosts
action = allow
groups = grp00001
services = sshd
hosts = db*

[access:no-user00003]
action = deny
users = user00003
services = *
hosts = *
EOF2
chmod 644 "$policy"

out=$("$PHI_DAEMON" --check-config --config "$DAEMON_CONF")
phi_assert_contains "$out" "$policy: ok (3 rules, 0 roles)" "--check-config checks the policy too"

daemon_start
wait_users 6
phi_assert_contains "$(status_get policy)" "loaded from $policy: 3 rules" "status says which policy is in force"
phi_assert_eq "$(status_get policy_rules)" 3 "and how many rules it has"
entry=$(phi_journal_wait --first PHI_EVENT=policy_reload PHI_OUTCOME=ok)
phi_assert_eq "$(jq -r .PHI_ACTOR <<<"$entry")" start "the load at start is journaled"

check() { # USER HOST SERVICE -> json, status in $rc
    rc=0
    out=$(ctl --json policy check "$1" --host "$2" --service "$3") || rc=$?
}
check user00001 db1 sshd
phi_assert_eq "$rc" 0 "a grp00001 member may ssh to db1: exit 0"
phi_assert_eq "$(jq -r '[.allowed, .rule] | @tsv' <<<"$out")" $'true\tgrp1-ssh' "allowed by grp1-ssh"
check user00001 web1 sshd
phi_assert_eq "$rc" 1 "not to web1: exit 1"
phi_assert_eq "$(jq -r '[.allowed, .rule, .refusal] | @tsv' <<<"$out")" $'false\tdefault-deny\tno-rule' \
    "denied by default (no rule)"
check user00003 db1 sshd
phi_assert_eq "$(jq -r '[.allowed, .rule, .refusal] | @tsv' <<<"$out")" $'false\tno-user00003\tdeny-rule' \
    "a deny rule wins over the group's allow"
phi_assert_contains "$(jq -r .reason <<<"$out")" "no-user00003" "and the reason names it"
check user00006 db1 sshd
phi_assert_eq "$(jq -r .allowed <<<"$out")" false "a user outside grp00001 is denied"
check nosuchuser db1 sshd
phi_assert_eq "$(jq -r '[.allowed, .refusal] | @tsv' <<<"$out")" $'false\tunknown-user' "an unknown name is denied as unknown"
check root db1 login
phi_assert_eq "$(jq -r '[.allowed, .rule] | @tsv' <<<"$out")" $'true\troot' "local root is allowed by its uid rule"
# user00002 is local too (the passwd file), so its local account decides: not in grp00001 there
check user00002 db1 sshd
phi_assert_eq "$(jq -r .allowed <<<"$out")" false "a local account shadows the directory user of the same name"
rc=0; text=$(ctl policy check user00001 --host db1) || rc=$?
phi_assert_eq "$rc" 0 "the service defaults to sshd"
phi_assert_match "$text" 'rule +grp1-ssh' "the table shows the rule"

# Only admins may ask. (The test's directories are private; the socket's must
# be reachable for another user to ask at all.)
chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$DAEMON_DIR" "$DAEMON_DIR/run"
rc=0; out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$PHI_CTL" --socket "$DAEMON_SOCKET" \
    policy check user00001 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "an ordinary user may not ask"
phi_assert_contains "$out" "only for root or members of phi-admins" "and is told who may"

# A broken policy: every problem with its line, and reload keeps the old one.
cp "$policy" "$policy.good"
cat >>"$policy" <<'EOF2'

[access:broken]
action = perhaps
services = sshd
hosts = *
users = user00006

[access:grp1-ssh]
action = allow
EOF2
rc=0; out=$("$PHI_DAEMON" --check-config --config "$DAEMON_CONF") || rc=$?
phi_assert_eq "$rc" 1 "--check-config fails on a broken policy"
phi_assert_contains "$out" "$policy:21: action must be allow or deny, got 'perhaps'" "it names the broken line"
phi_assert_contains "$out" "$policy:26: [access:grp1-ssh] is defined twice" "and the next problem with its own line"
phi_check "and reports every problem, not only the first" test "$(grep -c "^$policy:[0-9]*: " <<<"$out")" -ge 2
rc=0; out=$(ctl reload 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "phictl reload says the policy was refused (exit 1)"
phi_assert_contains "$out" "refused" "in words"
phi_assert_contains "$(status_get policy)" "stays in force" "status: the old policy stays"
entry=$(phi_journal_wait --first PHI_EVENT=policy_reload PHI_OUTCOME=refused)
phi_assert_match "$(jq -r .PHI_REASON <<<"$entry")" "^$policy:[0-9]+: " "the journal names the first problem"
phi_assert_eq "$(jq -r .PRIORITY <<<"$entry")" 3 "at error priority"
check user00001 db1 sshd
phi_assert_eq "$(jq -r .rule <<<"$out")" grp1-ssh "the old policy still decides"

# A good new policy by SIGHUP: in force at once, no restart.
cp "$policy.good" "$policy"
cat >>"$policy" <<'EOF2'

[access:grp2-web]
action = allow
groups = grp00002
services = sshd
hosts = web*
EOF2
kill -HUP "$DAEMON_PID"
phi_wait_for --timeout 10 --what "the new policy in status" status_is policy_rules 4
check user00006 web1 sshd
phi_assert_eq "$(jq -r '[.allowed, .rule] | @tsv' <<<"$out")" $'true\tgrp2-web' "the reloaded policy lets user00006 in"
phi_assert_eq "$(phi_journal_json PHI_EVENT=policy_reload PHI_OUTCOME=ok PHI_ACTOR=SIGHUP | jq -s length)" 1 \
    "the reload is journaled"

# The daemon does not start on a broken policy.
daemon_stop
printf '[access:x]\naction = allow\n' >"$policy"
rc=0; out=$("$PHI_DAEMON" --foreground --config "$DAEMON_CONF" 2>&1) || rc=$?
phi_assert_eq "$rc" 1 "the daemon refuses to start on a broken policy"
phi_assert_contains "$out" "$policy:1: " "and prints the problems"

# No policy file: the daemon runs and denies everyone.
rm "$policy"
out=$("$PHI_DAEMON" --check-config --config "$DAEMON_CONF")
phi_assert_contains "$out" "$policy: missing" "--check-config says the policy is missing"
daemon_start
phi_assert_contains "$(status_get policy)" "missing" "status says so"
check root db1 login
phi_assert_eq "$(jq -r '[.allowed, .rule] | @tsv' <<<"$out")" $'false\tdefault-deny' "with no policy even root is denied"
phi_pass "policy in the daemon checked"
