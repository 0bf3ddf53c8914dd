#!/usr/bin/env bash
# TOTP state belongs to the person, not to the name. Tokens and tickets are
# bound to the directory entry's identity (entryUUID), which is also part of
# the seal's additional data:
#   - a user deleted from the directory has token and ticket revoked in the
#     next accepted refresh, journaled (token_revoked, PHI_REASON=user_removed);
#   - a new person given the same name starts unenrolled: the old secret's
#     codes are refused, and so is enrolment without a new ticket;
#   - a seed moved into another identity's row does not open (unseal_failed),
#     and a row naming another identity than the name's is refused;
#   - a refresh refused by the shrink guard revokes nothing.
# (Before, all of it was keyed by name: the new person logged in with the
# departed person's authenticator.)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=totp-lib.bash
source "$(dirname "$0")/totp-lib.bash"
phi_harness_init "$@"

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users 20 >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
totp_setup
sed -i -e "s|^uri = .*|uri = $PHI_LDAP_URI|" \
    -e "s|^tls = none|tls = none\nuser_base = ou=people,$suffix\ngroup_base = ou=groups,$suffix|" "$TOTP_CONF"
totp_daemon_start
ctl() { "$PHI_BUILD_DIR/phiaccessd/phictl" "$@"; }
status_of() { ctl --json status | jq -r --arg k "$1" '.[$k]'; }
users_are() { [ "$(status_of users)" = "$1" ]; }
phi_wait_for --timeout 30 --what "20 directory users" users_are 20 || phi_die "the directory did not load"
totp_stack phi-auth "auth required $PHI_BUILD_DIR/pam_phi/pam_phi.so"
totp_stack other "auth required pam_deny.so" "account required pam_deny.so" \
    "password required pam_deny.so" "session required pam_deny.so"
db=$TOTP_DIR/phi.db
sq() { sqlite3 "$db" "$@"; }
uuid_of() { phi_ldapsearch -b "uid=$1,ou=people,$suffix" -s base entryUUID | sed -n 's/^entryUUID: //p'; }

# Directory users (uid 10000+i, as gen-ldif makes them), enrolled as
# themselves through phictl.
for i in 3 5 6 7; do
    TOTP_UID[user0000$i]=$((10000 + i))
    totp_enroll "user0000$i"
done
phi_assert_eq "$(sq "SELECT identity FROM totp_tokens WHERE user = 'user00003'")" "$(uuid_of user00003)" \
    "user00003's token belongs to the entry's entryUUID"
step=$(totp_fresh_step user00003)
phi_assert_eq "$(totp_pam phi-auth user00003 --answer "$(totp_code user00003 "$step")")" PAM_SUCCESS \
    "user00003 logs in with the code"
TOTP_LAST[user00003]=$step
TOTP_UID[user00004]=10004
totp_phictl_as root totp issue user00004 --expires 1h >/dev/null
phi_assert_eq "$(sq "SELECT identity FROM totp_tickets WHERE user = 'user00004'")" "$(uuid_of user00004)" \
    "user00004's ticket belongs to the entry too"

# ---------------------------------------------------------------- shrink guard
# A search that finds no user is refused: nothing is revoked.
cur=$(phi_journal_cursor)
sed -i "s|^group_base = .*|&\nuser_filter = (\&(objectClass=posixAccount)(uid=nobody-matches))|" "$TOTP_CONF"
kill -HUP "$TOTP_DAEMON_PID"
phi_journal_wait --first --timeout 30 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ldap_sync \
    PHI_OUTCOME=refused >/dev/null || phi_die "the empty refresh was not refused"
phi_check_fails "a refused refresh revokes no token" phi_journal_wait --timeout 2 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=token_revoked
phi_assert_eq "$(sq "SELECT COUNT(*) FROM totp_tokens")" 4 "every token is still there"
step=$(totp_fresh_step user00005)
phi_assert_eq "$(totp_pam phi-auth user00005 --answer "$(totp_code user00005 "$step")")" PAM_SUCCESS \
    "after the refused refresh user00005 still logs in"
TOTP_LAST[user00005]=$step
sed -i '/^user_filter = /d' "$TOTP_CONF"
cur=$(phi_journal_cursor)
kill -HUP "$TOTP_DAEMON_PID"
phi_journal_wait --first --timeout 30 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ldap_sync \
    PHI_OUTCOME=ok >/dev/null || phi_die "no refresh after the filter was restored"

# ---------------------------------------------------------------- departure
old_uuid=$(uuid_of user00003)
cur=$(phi_journal_cursor)
# shellcheck disable=SC2119 # no arguments: the LDIF is on stdin
phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00003,ou=people,$suffix
changetype: delete

dn: uid=user00004,ou=people,$suffix
changetype: delete
LDIF
ev=$(phi_journal_wait --first --timeout 30 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=token_revoked \
    PHI_USER=user00003) || phi_die "no token_revoked for user00003"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" user_removed "journaled with PHI_REASON=user_removed"
phi_assert_contains "$(printf '%s\n' "$ev" | phi_json_field MESSAGE)" "$old_uuid" "the entry is named"
phi_check "user00004's ticket is revoked too (journaled)" phi_journal_wait --timeout 10 --after "$cur" \
    SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=token_revoked PHI_USER=user00004
phi_assert_eq "$(sq "SELECT COUNT(*) FROM totp_tokens WHERE user = 'user00003'") \
$(sq "SELECT COUNT(*) FROM totp_tickets WHERE user = 'user00004'")" "0 0" "token and ticket are gone from the store"

# ---------------------------------------------------------------- the name again
# A new person (another entry, another uid) is given the name user00003.
# shellcheck disable=SC2119 # no arguments: the LDIF is on stdin
phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00003,ou=people,$suffix
changetype: add
objectClass: inetOrgPerson
objectClass: posixAccount
uid: user00003
cn: Someone Else
sn: Else
uidNumber: 20003
gidNumber: 10000
homeDirectory: /home/user00003
loginShell: /bin/sh
LDIF
phi_wait_for --timeout 30 --what "19 users" users_are 19 || phi_die "the new user00003 did not arrive"
new_uuid=$(uuid_of user00003)
phi_assert_ne "$new_uuid" "$old_uuid" "the new user00003 is another entry"
cur=$(phi_journal_cursor)
step=$(totp_fresh_step user00003)
phi_assert_eq "$(totp_pam phi-auth user00003 --answer "$(totp_code user00003 "$step")")" PAM_AUTH_ERR \
    "the departed person's secret does not let the new user00003 in"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail \
    PHI_USER=user00003) || phi_die "no auth_fail for the new user00003"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "the new user00003 is unenrolled"
TOTP_UID[user00003]=20003
phi_check_fails "nor can the new user00003 enrol without a ticket of their own" \
    totp_phictl_enroll_expect user00003 0

# ---------------------------------------------------------------- tampering
# user00005's sealed seed moved into user00006's row (whose identity it keeps)
# does not open there.
cur=$(phi_journal_cursor)
sq "UPDATE totp_tokens SET (nonce, sealed) = (SELECT nonce, sealed FROM totp_tokens WHERE user = 'user00005' AND state = 2)
    WHERE user = 'user00006' AND state = 2"
step=$(totp_fresh_step user00005)
# (a seed that does not open is "cannot decide" to pam_phi, as for a replaced key)
phi_assert_eq "$(totp_pam phi-auth user00006 --answer "$(totp_code user00005 "$step")")" PAM_AUTHINFO_UNAVAIL \
    "user00005's seed in user00006's row does not let anyone in"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail \
    PHI_USER=user00006) || phi_die "no auth_fail for user00006"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" unseal_failed "it does not open: unseal_failed"
# A row that names another identity than the name's is not the name's token,
# even though its seal is intact (the identity column alone was changed).
cur=$(phi_journal_cursor)
sq "UPDATE totp_tokens SET identity = 'local:4242' WHERE user = 'user00007'"
step=$(totp_fresh_step user00007)
phi_assert_eq "$(totp_pam phi-auth user00007 --answer "$(totp_code user00007 "$step")")" PAM_AUTH_ERR \
    "a token bound to another identity is refused"
ev=$(phi_journal_wait --first --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail \
    PHI_USER=user00007) || phi_die "no auth_fail for user00007"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" no_token "journaled as no token"
# ---------------------------------------------------------------- paged
# The same through a paged full refresh (as with Active Directory, and
# `phictl sync --full`): a user deleted while the daemon was down is missing
# from it.
TOTP_UID[user00008]=10008
totp_enroll user00008
totp_daemon_stop
sed -i "s|^group_base = .*|&\nsync = paged|" "$TOTP_CONF"
# shellcheck disable=SC2119 # no arguments: the LDIF is on stdin
phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00008,ou=people,$suffix
changetype: delete
LDIF
cur=$(phi_journal_cursor)
totp_daemon_start
ctl sync --full >/dev/null
ev=$(phi_journal_wait --first --timeout 30 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=token_revoked \
    PHI_USER=user00008) || phi_die "no token_revoked for user00008 after the paged refresh"
phi_assert_eq "$(printf '%s\n' "$ev" | phi_json_field PHI_REASON)" user_removed \
    "a paged full refresh revokes the token of a user it no longer finds"
phi_check "that refresh was paged" phi_journal_wait --timeout 5 --after "$cur" SYSLOG_IDENTIFIER=phiaccessd \
    PHI_EVENT=ldap_sync PHI_SYNC_MODE=paged PHI_OUTCOME=ok
# Two users swap names: the refresh that writes only what changed meets each
# name still held by the other, and writes the refresh again from empty.
# shellcheck disable=SC2119 # no arguments: the LDIF is on stdin
phi_ldapmodify >/dev/null <<LDIF
dn: uid=user00010,ou=people,$suffix
changetype: modrdn
newrdn: uid=swaptmp
deleteoldrdn: 1

dn: uid=user00011,ou=people,$suffix
changetype: modrdn
newrdn: uid=user00010
deleteoldrdn: 1

dn: uid=swaptmp,ou=people,$suffix
changetype: modrdn
newrdn: uid=user00011
deleteoldrdn: 1
LDIF
ctl sync --full >/dev/null
phi_assert_eq "$(sqlite3 "$TOTP_DIR/phi-identities.db" "SELECT name || '=' || uid FROM users WHERE name IN ('user00010', 'user00011') ORDER BY name" | tr '\n' ' ')" \
    "user00010=10011 user00011=10010 " "a full refresh takes two users' swapped names"
phi_pass "TOTP state follows the directory's identity"
