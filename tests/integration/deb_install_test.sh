#!/usr/bin/env bash
# The Debian packages, end to end, on a fresh machine that is thrown away:
#   - dpkg-buildpackage -b builds libpam-phi, libnss-phi and phiaccessd from a
#     copy of the source (never in the tree itself), and lintian finds no
#     error and no warning in them;
#   - they install into a private overlay of the host's root (chroot; every
#     write lands in a tmpfs, the host's files are the read-only lower layer):
#     nsswitch.conf gets phi after files, the PAM profile is registered but
#     off, the groups and the master key are made (encrypted credential, and,
#     on a second install where systemd-creds cannot encrypt, a 0400 file),
#     the units are enabled, pass systemd-analyze verify and keep a low
#     exposure, the journal catalog is compiled;
#   - the daemon, started from the installed unit's own ExecStart as systemd
#     would (systemd is not PID 1 here), answers phictl status, serves a
#     directory user through the installed NSS module, and after
#     pam-auth-update --enable phi a password + TOTP login through the
#     installed module works with pamtester (and a wrong code fails);
#   - remove takes pam_phi out of the stacks and phi out of nsswitch.conf,
#     purge takes the config, key, store and units, leaving the throwaway
#     root's /etc as it was (but for the system groups, which Debian keeps);
#   - the host's own /etc and dpkg database are untouched (checked outside).
# dpkg-query's ${field} formats are dpkg's, not the shell's:
# shellcheck disable=SC2016
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=deb-lib.bash
source "$(dirname "$0")/deb-lib.bash"

phi_harness_init "$@"

for tool in dpkg-buildpackage dh lintian pamtester oathtool expect systemd-analyze systemd-creds; do
    command -v "$tool" >/dev/null || phi_die "$tool is missing; run ./scripts/setup"
done
[ -e /usr/share/perl5/Debian/Debhelper/Sequence/installnss.pm ] ||
    phi_die "dh-nss is missing; run ./scripts/setup"

# ---------------------------------------------------------------------------
# Build, in a copy (deb-lib.bash).

deb_build
changes=$DEB_CHANGES

lintian_t0=$SECONDS
lint=$(lintian --allow-root "$changes" 2>&1) || true
phi_log "lintian took $((SECONDS - lintian_t0)) s"
phi_assert_eq "$(grep -E '^[EW]: ' <<<"$lint" || true)" "" "lintian: no error and no warning"
phi_assert_not_contains "$lint" "lintian: " "lintian ran to the end (no internal error)"

# ---------------------------------------------------------------------------
# A throwaway machine: an overlay of the host's root, writes in a tmpfs
# (deb-lib.bash).

deb_machine
root=$DEB_ROOT

# A user who was there before the packages came, and a PAM service that uses
# the common stacks the way login, su, sshd and sudo do.
in_root useradd -m -s /bin/sh alice
echo 'alice:phi-alice-pw' | in_root chpasswd
printf '@include common-auth\n@include common-account\n' >"$root/etc/pam.d/phi-login"
etc_state "$root/etc" >"$PHI_TMP/root-etc.before"
nsswitch_before=$(cat "$root/etc/nsswitch.conf")
common_auth_before=$(cat "$root/etc/pam.d/common-auth")

login() { # ANSWERS...: pamtester through phi-login as alice, one answer a line
    printf '%s\n' "$@" | in_root timeout 20 pamtester phi-login alice authenticate >>"$PHI_TMP/pamtester.log" 2>&1
}
phi_check "before the install alice logs in with her password alone" login phi-alice-pw

# ---------------------------------------------------------------------------
# Install.

install_t0=$SECONDS
if ! in_root dpkg -i "${DEB_IN_ROOT[@]}" >"$PHI_TMP/install.log" 2>&1; then
    phi_fail "dpkg -i of the three packages" "$(cat "$PHI_TMP/install.log")"
fi
phi_log "installed in $((SECONDS - install_t0)) s"
phi_assert_eq "$(in_root dpkg-query -W -f '${db:Status-Abbrev}\n' "${DEB_PACKAGES[@]}")" \
    $'ii \nii \nii ' "all three packages are installed and configured"

nss=$(cat "$root/etc/nsswitch.conf")
phi_assert_match "$(grep '^passwd:' <<<"$nss")" '^passwd:[[:space:]]+files phi( |$)' "nsswitch: passwd has phi right after files"
phi_assert_match "$(grep '^group:' <<<"$nss")" '^group:[[:space:]]+files phi( |$)' "nsswitch: group has phi right after files"
phi_assert_eq "$(grep -c -w phi <<<"$nss")" 2 "nsswitch: phi on no other line"

phi_check "the PAM profile is registered" test -f "$root/usr/share/pam-configs/phi"
phi_assert_not_contains "$(cat "$root"/etc/pam.d/common-*)" pam_phi "the profile is off: no stack names pam_phi"
phi_check "still a password alone logs alice in" login phi-alice-pw

for group in phi-admins phi-approvers phi-auditors; do
    gid=$(in_root getent group "$group" | cut -d: -f3)
    phi_assert_match "$gid" '^[0-9]+$' "the group $group exists"
    phi_check "$group is a system group (gid $gid)" test "$gid" -lt 1000
    phi_assert_contains "$(cat "$root/etc/phi/phiaccessd.conf")" "= $group" "the shipped config names $group"
done

cred=$root/etc/credstore.encrypted/phi-master-key
phi_check "the master key is an encrypted credential" test -f "$cred"
phi_assert_eq "$(stat -c '%a %U' "$cred")" "400 root" "the credential is root's alone (0400)"
phi_check_fails "no plain key file beside it" test -e "$root/etc/phi/master.key"

phi_assert_contains "$(in_root dpkg-query -W -f '${Conffiles}' phiaccessd)" /etc/phi/phiaccessd.conf \
    "/etc/phi/phiaccessd.conf is a conffile"
# The default policy, in a tree that has one, is /etc/phi/policy.conf, a conffile.
if [ -f "$PHI_SOURCE_DIR/policy/policy.conf" ]; then
    phi_check "/etc/phi/policy.conf is the tree's default policy" \
        cmp "$root/etc/phi/policy.conf" "$PHI_SOURCE_DIR/policy/policy.conf"
    phi_assert_contains "$(in_root dpkg-query -W -f '${Conffiles}' phiaccessd)" /etc/phi/policy.conf \
        "/etc/phi/policy.conf is a conffile"
    phi_check "man phi-policy.conf finds its page" in_root man -w phi-policy.conf
fi
phi_check "the shipped config passes phiaccessd --check-config" in_root phiaccessd --check-config
for page in man1/phictl.1 man5/phiaccessd.conf.5 man8/phiaccessd.8 man8/pam_phi.8 man8/sudo_phi.8 man8/nss-phi.8; do
    name=${page#*/}
    phi_check "man ${name%.*} finds its page" in_root man -w "${name%.*}"
done
# sudo finds the plugin by name where its own are.
phi_check "sudo_phi.so is beside sudo's own plugins" test -f "$root/usr/libexec/sudo/sudo_phi.so"

# The catalog: systemd's dpkg trigger ran journalctl --update-catalog.
ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$PHI_SOURCE_DIR/phiaccessd/phi.catalog" | LC_ALL=C sort)
listed=$(in_root journalctl --list-catalog | awk '{print $1}' | LC_ALL=C sort)
phi_assert_ne "$ids" "" "the source catalog has message ids"
phi_assert_eq "$(LC_ALL=C comm -23 <(echo "$ids") <(echo "$listed"))" "" \
    "every message id of phi.catalog is in the compiled catalog ($(wc -l <<<"$ids") ids)"

for unit in phiaccessd.service phiaccessd.socket phiaccessd-pam.socket; do
    phi_assert_eq "$(systemctl --root="$root" is-enabled "$unit" 2>&1)" enabled "$unit is enabled"
done
out=$(in_root systemd-analyze verify --man=no phiaccessd.service phiaccessd.socket phiaccessd-pam.socket 2>&1) ||
    phi_fail "systemd-analyze verify of the installed units" "$out"
phi_assert_eq "$out" "" "systemd-analyze verify: the installed units (with the drop-in) load cleanly"
report=$(in_root systemd-analyze security --offline=yes --no-pager phiaccessd.service 2>&1) ||
    phi_fail "systemd-analyze security" "$report"
exposure=$(sed -n 's/.*Overall exposure level for phiaccessd.service: \([0-9.]*\).*/\1/p' <<<"$report")
phi_assert_match "$exposure" '^[0-9]+\.[0-9]$' "systemd-analyze security rates the installed service: $exposure"
phi_check "its exposure is at most 2.5 ('OK'), now $exposure" awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }'

# ---------------------------------------------------------------------------
# The daemon, started the way systemd would start it from the installed unit
# (deb_daemon_start).

# A directory for it, as an admin would point the installed config at one
# (the shipped [ldap] uri names a server that is not there).
phi_gen_ldif --suffix dc=example,dc=org --users 3 --groups 1 >"$PHI_TMP/dir.ldif"
phi_slapd_start dc=example,dc=org "$PHI_TMP/dir.ldif"
ldap_user=$(sed -n 's/^uid: //p' "$PHI_TMP/dir.ldif" | sed -n 1p)
sed -i -e "s#^uri = .*#uri = $PHI_LDAP_URI#" -e 's/^#tls = starttls/tls = none/' "$root/etc/phi/phiaccessd.conf"

cursor=$(phi_journal_cursor)
deb_daemon_start
phi_check "phictl status answers from the installed daemon" in_root phictl status
phi_journal_wait --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd \
    MESSAGE="TOTP verifier ready on /run/phiaccessd/pam (master key from credential phi-master-key)" >/dev/null ||
    phi_fail "the daemon took its master key from the credential" \
        "$(phi_journal_json --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd | phi_json_field MESSAGE)"
phi_pass "the daemon runs with the master key from the encrypted credential"
# The key is never printed: the install's output does not hold it, in any form.
hex() { od -An -v -tx1 | tr -d ' \n'; }
plain=$root$DEB_CREDS_DIR/phi-master-key
phi_assert_eq "$(stat -c %s "$plain")" 32 "the credential holds a 32-byte key"
phi_assert_not_contains "$(hex <"$PHI_TMP/install.log")" "$(hex <"$plain")" "the install's output does not hold the key"
phi_assert_not_contains "$(cat "$PHI_TMP/install.log")" "$(base64 -w0 <"$plain")" "nor its base64"
phi_wait_for --timeout 15 --what "the snapshot with $ldap_user" in_root getent -s phi passwd "$ldap_user" ||
    phi_fail "glibc finds $ldap_user through the installed NSS module" "$(in_root phictl status 2>&1)"
phi_assert_match "$(in_root getent passwd "$ldap_user")" "^$ldap_user:" \
    "getent passwd $ldap_user: files, then phi, as nsswitch.conf says"

# Enrol alice (a local account) as the suite does: a ticket from root, then
# phictl totp enroll as alice on a pty, answered with oathtool's code.
in_root phictl totp issue alice --expires 1h >/dev/null || phi_fail "phictl totp issue alice"
alice_uid=$(in_root id -u alice)
# shellcheck disable=SC2016 # Tcl, not shell
expect -f - -- "$root" "$alice_uid" "$PHI_TMP/alice.secret" "$PHI_TMP/alice.step" \
    >"$PHI_TMP/enroll.log" 2>&1 <<'EXP' ||
set timeout 20
lassign $argv root uid secret_file step_file
spawn chroot $root setpriv --reuid=$uid --regid=$uid --clear-groups -- /usr/bin/phictl totp enroll
expect {
    -re {otpauth://totp/[^\r\n]*secret=([A-Z2-7]+)} { set secret $expect_out(1,string) }
    timeout { puts "no otpauth URI"; exit 1 }
    eof { puts "phictl ended before the URI"; exit 1 }
}
set f [open $secret_file w]; puts $f $secret; close $f
expect "Code from your authenticator app: "
set step [expr {[clock seconds] / 30}]
send "[exec oathtool --totp -b $secret -N @[expr {$step * 30}]]\r"
expect {
    "Token active" {}
    timeout { puts "token not activated"; exit 1 }
    eof { puts "phictl ended without activating"; exit 1 }
}
expect eof
set f [open $step_file w]; puts $f $step; close $f
EXP
    phi_fail "alice enrols with phictl totp enroll" "$(cat "$PHI_TMP/enroll.log")"
phi_pass "alice enrolled a token"

phi_check "pam-auth-update --enable phi" in_root pam-auth-update --enable phi
phi_assert_contains "$(cat "$root/etc/pam.d/common-auth")" pam_phi.so "common-auth now runs pam_phi"
phi_check_fails "a password alone no longer logs alice in" login phi-alice-pw
phi_check_fails "nor the password with a wrong code" login phi-alice-pw 000000
# A step is accepted once: the one after enrolment's, which the window of
# one step either side accepts now.
code=$(oathtool --totp -b "$(cat "$PHI_TMP/alice.secret")" -N "@$((($(cat "$PHI_TMP/alice.step") + 1) * 30))")
phi_check "the password and the code from alice's app log her in" login phi-alice-pw "$code"

# Account: common-account now asks the daemon, and the shipped policy lets in
# local root and phi-admins only.
phi_assert_contains "$(cat "$root/etc/pam.d/common-account")" pam_phi.so "common-account now runs pam_phi"
account() { in_root timeout 20 pamtester phi-login "$1" acct_mgmt >>"$PHI_TMP/pamtester.log" 2>&1; }
phi_check_fails "the shipped policy keeps alice out (default deny)" account alice
phi_check "and lets local root in" account root
denied=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=access_denied PHI_USER=alice \
    PHI_SERVICE=phi-login) || phi_fail "alice's refusal is journaled as access_denied"
phi_assert_eq "$(phi_json_field PHI_RULE <<<"$denied")" default-deny "no rule let her in"
cat >>"$root/etc/phi/policy.conf" <<'POLICY'

[access:alice-login]
action = allow
users = alice
services = phi-login
hosts = *
POLICY
phi_check "phictl reload takes the new policy" in_root phictl reload
phi_check "a rule for her lets alice in, without a restart" account alice
phi_check "phictl policy check agrees" in_root phictl policy check alice --service phi-login
event=$(phi_journal_wait --first --timeout 10 --after "$cursor" PHI_EVENT=auth_ok PHI_USER=alice \
    PHI_SERVICE=phi-login) || phi_fail "the login is journaled as auth_ok for alice"
msgid=$(phi_json_field MESSAGE_ID <<<"$event")
subject=$(sed -n "/^-- $msgid\$/,/^\$/s/^Subject: //p" "$PHI_SOURCE_DIR/phiaccessd/phi.catalog")
phi_assert_ne "$subject" "" "the event's MESSAGE_ID ($msgid) is in phi.catalog"
phi_assert_contains "$(in_root journalctl --no-pager -x MESSAGE_ID="$msgid" 2>&1)" "Subject: $subject" \
    "journalctl -x on the machine explains the login from the installed catalog"

# An upgrade (here: the same version again) keeps the key: a new one would
# orphan alice's token.
cred_sum=$(sha256sum <"$cred")
if ! in_root dpkg -i "${DEB_IN_ROOT[phiaccessd]}" >"$PHI_TMP/reinstall.log" 2>&1; then
    phi_fail "dpkg -i phiaccessd again" "$(cat "$PHI_TMP/reinstall.log")"
fi
phi_assert_eq "$(sha256sum <"$cred")" "$cred_sum" "reinstalling phiaccessd keeps the master key"
phi_assert_not_contains "$(cat "$PHI_TMP/reinstall.log")" "made the TOTP master key" "and makes no new one"

# ---------------------------------------------------------------------------
# Remove, then purge.

deb_daemon_stop
if ! in_root dpkg --remove "${DEB_PACKAGES[@]}" >"$PHI_TMP/remove.log" 2>&1; then
    phi_fail "dpkg --remove" "$(cat "$PHI_TMP/remove.log")"
fi
phi_assert_not_contains "$(cat "$root"/etc/pam.d/common-*)" pam_phi "after remove no stack names pam_phi"
phi_assert_eq "$(cat "$root/etc/pam.d/common-auth")" "$common_auth_before" "common-auth is as before the install"
phi_assert_eq "$(cat "$root/etc/nsswitch.conf")" "$nsswitch_before" "after remove nsswitch.conf is as before"
phi_check "alice logs in with her password alone again" login phi-alice-pw
phi_check "remove keeps the config" test -f "$root/etc/phi/phiaccessd.conf"
phi_check "remove keeps the master key" test -f "$cred"
phi_check "remove keeps the store" test -f "$root/var/lib/phiaccessd/phi.db"

if ! in_root dpkg --purge "${DEB_PACKAGES[@]}" >"$PHI_TMP/purge.log" 2>&1; then
    phi_fail "dpkg --purge" "$(cat "$PHI_TMP/purge.log")"
fi
for gone in /etc/phi /etc/credstore.encrypted /var/lib/phiaccessd /usr/share/pam-configs/phi \
    /lib/systemd/system/phiaccessd.service /lib/systemd/system/phiaccessd.service.d \
    /etc/systemd/system/multi-user.target.wants/phiaccessd.service \
    /etc/systemd/system/sockets.target.wants/phiaccessd.socket; do
    phi_check_fails "purge removed $gone" test -e "$root$gone"
done
for p in "${DEB_PACKAGES[@]}"; do
    state=$(in_root dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    phi_assert_match "${state:-none}" '^(none|[pu]n ?)$' "dpkg holds nothing of $p after purge (${state:-none})"
done
# Everything in /etc is as it was, but the system groups (and the backups
# that adding them left), which Debian keeps after a purge.
etc_state "$root/etc" >"$PHI_TMP/root-etc.after"
strip_groups() { grep -v -E '^(\./|[0-9a-f]{64}  \./)(group|gshadow)-?( |$)' "$1"; }
phi_check "after purge the machine's /etc is as before the install, but for the groups" \
    diff -u <(strip_groups "$PHI_TMP/root-etc.before") <(strip_groups "$PHI_TMP/root-etc.after")
phi_assert_eq "$(in_root getent group phi-admins | cut -d: -f1)" phi-admins "the groups stay"

# ---------------------------------------------------------------------------
# A host where systemd-creds cannot encrypt: the key becomes a 0400 file,
# which the daemon reads as [totp] master_key.

mount --bind "$root/bin/false" "$root/usr/bin/systemd-creds"
if ! in_root dpkg -i "${DEB_IN_ROOT[phiaccessd]}" >"$PHI_TMP/install2.log" 2>&1; then
    phi_fail "dpkg -i phiaccessd without systemd-creds" "$(cat "$PHI_TMP/install2.log")"
fi
umount "$root/usr/bin/systemd-creds"
key=$root/etc/phi/master.key
phi_check "without systemd-creds the key is a file" test -f "$key"
phi_assert_eq "$(stat -c '%a %U %s' "$key")" "400 root 32" "the key file is root's alone (0400), 32 bytes"
phi_check_fails "and no credential was left" test -e "$cred"
phi_check_fails "nor an empty credential store" test -e "$root/etc/credstore.encrypted"
phi_assert_not_contains "$(hex <"$PHI_TMP/install2.log")" "$(hex <"$key")" "this install's output does not hold the key"
phi_assert_not_contains "$(cat "$PHI_TMP/install2.log")" "$(base64 -w0 <"$key")" "nor its base64"
cursor=$(phi_journal_cursor)
sed -i -e "s#^uri = .*#uri = $PHI_LDAP_URI#" -e 's/^#tls = starttls/tls = none/' "$root/etc/phi/phiaccessd.conf"
deb_daemon_start
phi_journal_wait --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd \
    MESSAGE="TOTP verifier ready on /run/phiaccessd/pam (master key from /etc/phi/master.key)" >/dev/null ||
    phi_fail "the daemon took its master key from /etc/phi/master.key" \
        "$(phi_journal_json --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd | phi_json_field MESSAGE)"
phi_pass "the daemon runs with the master key from the file"
deb_daemon_stop
if ! in_root dpkg --purge phiaccessd >"$PHI_TMP/purge2.log" 2>&1; then
    phi_fail "dpkg --purge phiaccessd" "$(cat "$PHI_TMP/purge2.log")"
fi
etc_state "$root/etc" >"$PHI_TMP/root-etc.after2"
phi_check "after the second purge /etc is as before, but for the groups" \
    diff -u <(strip_groups "$PHI_TMP/root-etc.before") <(strip_groups "$PHI_TMP/root-etc.after2")
phi_pass "packages built, installed, used, removed and purged"
