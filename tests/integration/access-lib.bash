# shellcheck shell=bash disable=SC2034,SC2153 # variables for the tests that source this, set by totp-lib.bash
# Helpers shared by the host-access integration tests (access_pam_test.sh,
# access_sshd_test.sh): pam_phi's account and session types against the real
# daemon, its access policy and directory users. Source after
# tests/lib/harness.bash and totp-lib.bash; call access_setup after
# phi_harness_init.
#
# What access_setup makes, on top of totp_setup (journald, /run/phiaccessd,
# the daemon's config, store and master key):
#   - this host is named ehr-db1 (the test's own UTS namespace), the name the
#     daemon asks the policy about;
#   - a private slapd with the directory users below, which the daemon syncs;
#     lena is a local account (passwd_file), the rest come from the directory;
#   - the policy file $ACCESS_POLICY, written by access_policy.
#
#   user   uid    directory groups                 policy v1      v2 (reloaded)
#   alice  10001  clinicians (member, primary)     clinicians     clinicians
#   bob    10002  clinicians (primary group only)  clinicians     clinicians
#   carol  10003  billing                          default-deny   billing
#   dave   10004  clinicians, staff (primary)      no-dave        no-dave
#   erin   10005  clinicians                       clinicians     clinicians
#   frank  10006  clinicians                       clinicians     clinicians
#   gina   10007  clinicians                       clinicians     clinicians
#   lena   2001   (local)                          lena-local     lena-local

ACCESS_SUFFIX=dc=example,dc=org
ACCESS_HOST=ehr-db1
ACCESS_DIR_USERS=(alice bob carol dave erin frank gina)
# Local accounts of the daemon's passwd_file (totp_setup writes them).
TOTP_USERS=(lena)
PAM_PHI=$PHI_BUILD_DIR/pam_phi/pam_phi.so
PHICTL=$PHI_BUILD_DIR/phiaccessd/phictl

access_setup() {
    local i=0 u
    [ -r "$PAM_PHI" ] || phi_die "build the tree first ($PAM_PHI)"
    hostname "$ACCESS_HOST"
    totp_setup
    for u in "${ACCESS_DIR_USERS[@]}"; do
        i=$((i + 1))
        TOTP_UID["$u"]=$((10000 + i))
    done
    access_ldif >"$PHI_TMP/dir.ldif"
    phi_slapd_start "$ACCESS_SUFFIX" "$PHI_TMP/dir.ldif"
    ACCESS_POLICY=$TOTP_DIR/policy.conf
    sed -i -e "s|^uri = .*|uri = $PHI_LDAP_URI|" \
        -e "s|^tls = none|tls = none\nuser_base = ou=people,$ACCESS_SUFFIX\ngroup_base = ou=groups,$ACCESS_SUFFIX|" \
        -e "s|^group_file = .*|&\npolicy = $ACCESS_POLICY|" "$TOTP_CONF"
    access_policy v1
}

# The directory: people with their homes under $PHI_TMP/home, and groups
# listing members both ways (member DN and memberUid). bob is in clinicians
# only through his primary group, as many directories record it.
access_ldif() {
    local u i=0 gid
    cat <<LDIF
dn: $ACCESS_SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
dc: example
o: example

dn: ou=people,$ACCESS_SUFFIX
objectClass: top
objectClass: organizationalUnit
ou: people

dn: ou=groups,$ACCESS_SUFFIX
objectClass: top
objectClass: organizationalUnit
ou: groups

LDIF
    for u in "${ACCESS_DIR_USERS[@]}"; do
        i=$((i + 1))
        case "$u" in
            carol) gid=20002 ;;
            dave) gid=20003 ;;
            *) gid=20001 ;;
        esac
        cat <<LDIF
dn: uid=$u,ou=people,$ACCESS_SUFFIX
objectClass: top
objectClass: inetOrgPerson
objectClass: posixAccount
uid: $u
cn: ${u^} Test
sn: Test
uidNumber: $((10000 + i))
gidNumber: $gid
homeDirectory: $PHI_TMP/home/$u
loginShell: /bin/sh

LDIF
    done
    access_ldif_group clinicians 20001 alice dave erin frank gina
    access_ldif_group billing 20002 carol
    access_ldif_group staff 20003 dave
}

access_ldif_group() { # NAME GID MEMBER...
    local name=$1 gid=$2 m
    shift 2
    printf 'dn: cn=%s,ou=groups,%s\nobjectClass: top\nobjectClass: groupOfNames\nobjectClass: posixGroup\n' \
        "$name" "$ACCESS_SUFFIX"
    printf 'cn: %s\ngidNumber: %s\n' "$name" "$gid"
    for m in "$@"; do
        printf 'member: uid=%s,ou=people,%s\nmemberUid: %s\n' "$m" "$ACCESS_SUFFIX" "$m"
    done
    printf '\n'
}

# access_policy v1|v2|broken: writes the policy file. v2 adds the billing
# rule (carol gets in); "broken" is v1 (no billing rule: were it loaded, carol
# would be out again) with a section the parser refuses.
access_policy() {
    {
        cat <<'EOF'
# The host-access policy of the access_* tests.
[access:clinicians]
description = clinicians may log in to the EHR database hosts
action = allow
groups = clinicians
services = phi-login sshd
hosts = ehr-db*

[access:no-dave]
description = dave's access is suspended
action = deny
users = dave
services = *
hosts = *

[access:lena-local]
action = allow
users = lena
services = phi-login
hosts = *
EOF
        case "$1" in
            v1) ;;
            v2)
                printf '\n[access:billing]\naction = allow\ngroups = billing\nservices = phi-login sshd\nhosts = ehr-db*\n'
                ;;
            broken)
                printf '\n[access:oops]\naction = perhaps\ngroups = billing\nservices = sshd\nhosts = *\n'
                ;;
            *) phi_die "access_policy: no policy '$1'" ;;
        esac
    } >"$ACCESS_POLICY"
    chmod 0644 "$ACCESS_POLICY"
}

access_daemon_start() {
    totp_daemon_start
    phi_wait_for --timeout 30 --what "${#ACCESS_DIR_USERS[@]} directory users" access_status_is users \
        "${#ACCESS_DIR_USERS[@]}" || phi_die "the daemon did not load the directory"
}

access_ctl() {
    "$PHICTL" "$@"
}

access_status() { # KEY
    access_ctl --json status | jq -r --arg k "$1" '.[$k]'
}

access_status_is() { # KEY VALUE
    [ "$(access_status "$1")" = "$2" ]
}

# access_reload: `phictl reload`; its exit status in RELOAD_RC, output in RELOAD_OUT.
access_reload() {
    RELOAD_RC=0
    RELOAD_OUT=$(access_ctl reload 2>&1) || RELOAD_RC=$?
}

# policy_check USER SERVICE: `phictl --json policy check USER --service SERVICE`
# on this host (no --host: the daemon's own name, as at a login); exit status
# in PC_RC, the JSON object in PC_JSON.
policy_check() {
    PC_RC=0
    PC_JSON=$(access_ctl --json policy check "$1" --service "$2" 2>&1) || PC_RC=$?
}

pc_field() { # FIELD (of the last policy_check)
    jq -r --arg k "$1" '.[$k]' <<<"$PC_JSON"
}

# access_event CURSOR EVENT USER: the daemon's journal entries for it (waits up to 5 s).
access_event() {
    phi_journal_wait --timeout 5 --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" "PHI_USER=$3"
}

access_none() { # CURSOR EVENT USER: no such entry (after a journal sync)
    phi_journal_json --after "$1" SYSLOG_IDENTIFIER=phiaccessd "PHI_EVENT=$2" "PHI_USER=$3" | wc -l
}

jfield() { # JSON FIELD: FIELD of the first entry
    printf '%s\n' "$1" | sed -n 1p | phi_json_field "$2"
}

# access_sessions_json: `phictl --json sessions`.
access_sessions_json() {
    access_ctl --json sessions
}

access_session_listed() { # ID: `phictl --json sessions` lists it
    [ "$(access_sessions_json | jq -r --arg id "$1" '[.[] | select(.session == $id)] | length')" = 1 ]
}

access_session_unlisted() { # ID
    [ "$(access_sessions_json | jq -r --arg id "$1" '[.[] | select(.session == $id)] | length')" = 0 ]
}

# access_san_env: SAN_ENV, an env(1) prefix loading the sanitizer runtimes
# that the sanitizer build's pam_phi.so (and libnss_phi.so.2) needs in a
# program not built with them (pamtester, sshd); leak reports from those
# programs are not ours. Reports go to files under DIR, read by
# access_san_reports.
access_san_env() {
    local dir=$1
    SAN_ENV=()
    SAN_DIR=$dir
    SAN_LIBS=$(ldd "$PAM_PHI" | awk '/libasan|libubsan/ { printf "%s%s", sep, $3; sep = " " }')
    if [ -n "$SAN_LIBS" ]; then
        SAN_ENV=(env "LD_PRELOAD=$SAN_LIBS"
            "ASAN_OPTIONS=detect_leaks=0:log_path=$dir/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
            "UBSAN_OPTIONS=print_stacktrace=1:log_path=$dir/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
    fi
}

access_san_reports() {
    [ -n "$SAN_LIBS" ] || return 0
    cat "$SAN_DIR"/asan.* "$SAN_DIR"/ubsan.* 2>/dev/null || true
}
