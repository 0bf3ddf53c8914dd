#!/usr/bin/env bash
# phictl doctor against a host staged in this test's private mount namespace:
# the real /etc/pam.d, /etc/sudoers, /etc/nsswitch.conf, /etc/ssh, /etc/hosts
# and /etc/phi are replaced (for this test only) by files written here, sshd -T
# is the real one, and a real daemon and slapd run. A correct setup reports no
# problem and exits 0; each misconfiguration, staged one at a time on top of
# it, is reported under its check with a fix, and the exit status is 1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=daemon_lib.bash
source "$(dirname "$0")/daemon_lib.bash"
phi_harness_init "$@"

command -v /usr/sbin/sshd >/dev/null || phi_die "sshd is missing (scripts/setup installs openssh-server)"

# --- a correct host -----------------------------------------------------------
stage=$PHI_TMP/etc
mkdir -p "$stage/pam.d" "$stage/sudoers.d" "$stage/ssh"
printf 'passwd: files phi\ngroup: files phi\nshadow: files\nhosts: files\n' >"$stage/nsswitch.conf"
# Debian's layout: common-auth jumps over pam_deny on success; pam_phi follows.
cat >"$stage/pam.d/common-auth" <<'EOF'
auth [success=1 default=ignore] pam_unix.so nullok
auth requisite pam_deny.so
auth required pam_permit.so
EOF
printf '@include common-auth\nauth required pam_phi.so\naccount required pam_permit.so\n' >"$stage/pam.d/sshd"
printf '#%%PAM-1.0\nauth required pam_phi.so\n@include common-auth\n' >"$stage/pam.d/sudo"
printf 'Defaults group_source=dynamic\nroot ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n' >"$stage/sudoers"
printf '%%phi-dba ALL=(postgres) ALL\n' >"$stage/sudoers.d/phi"
chmod 440 "$stage/sudoers" "$stage/sudoers.d/phi"
ssh-keygen -q -t ed25519 -N '' -f "$stage/ssh/host_key"
cat >"$stage/ssh/sshd_config" <<'EOF'
HostKey /etc/ssh/host_key
UsePAM yes
KbdInteractiveAuthentication yes
AuthenticationMethods publickey,keyboard-interactive
PermitRootLogin no
EOF
cp /etc/hosts "$stage/hosts"
echo '127.0.0.1 ldap.test' >>"$stage/hosts"

mount --bind "$stage/nsswitch.conf" /etc/nsswitch.conf
mount --bind "$stage/pam.d" /etc/pam.d
mount --bind "$stage/sudoers" /etc/sudoers
[ -d /etc/sudoers.d ] || phi_die "the host has no /etc/sudoers.d to bind over"
mount --bind "$stage/sudoers.d" /etc/sudoers.d
mount --bind "$stage/ssh" /etc/ssh
mount --bind "$stage/hosts" /etc/hosts
phi_private_dir /run/sshd
phi_private_dir /etc/phi
chmod 755 /etc/phi

daemon_setup
ldif=$PHI_TMP/dir.ldif
phi_gen_ldif --suffix dc=example,dc=org --users 5 --groups 2 >"$ldif"
phi_slapd_start dc=example,dc=org "$ldif"
daemon_config "ldap://127.0.0.1:3890"
cp "$DAEMON_CONF" /etc/phi/phiaccessd.conf
chmod 644 /etc/phi/phiaccessd.conf
(umask 077; head -c 32 /dev/urandom >/etc/phi/master.key)
daemon_start
wait_users 5

# The kernel's own word on the clock, read independently of phictl: adjtimex
# returns TIME_ERROR (5) while the clock is unsynchronised. No test may change
# it (it is the host's), so the check is compared with it, and the correct host
# below skips it where this machine's clock is not synchronised.
clock_state=$(python3 -c 'import ctypes; b = ctypes.create_string_buffer(512); print(ctypes.CDLL(None).adjtimex(b))')
skip=()
[ "$clock_state" = 5 ] && skip=(--skip clock)

doctor_json() { "$PHI_CTL" --socket "$DAEMON_SOCKET" --json doctor "$@"; }

rc=0; out=$("$PHI_CTL" --socket "$DAEMON_SOCKET" doctor "${skip[@]}" 2>&1) || rc=$?
phi_assert_eq "$out" "no problems found" "a correct host has no problem"
phi_assert_eq "$rc" 0 "and doctor exits 0"
phi_assert_eq "$(doctor_json "${skip[@]}" | jq -c '[.ok, (.problems | length)]')" '[true,0]' \
    "--json says ok with no problems"

rc=0; out=$("$PHI_CTL" --socket "$DAEMON_SOCKET" --json doctor 2>&1) || rc=$?
if [ "$clock_state" = 5 ]; then
    phi_assert_contains "$(jq -r '.problems[] | select(.check == "clock") | .problem' <<<"$out")" \
        "not synchronised" "the unsynchronised clock of this machine is reported"
    phi_assert_eq "$rc" 1 "and doctor exits 1"
else
    phi_assert_eq "$(jq '[.problems[] | select(.check == "clock")] | length' <<<"$out")" 0 \
        "a synchronised clock is not reported"
fi

# expect_problem CHECK SEVERITY TEXT WHAT: doctor (clock skipped as above)
# exits 1 and reports TEXT under CHECK with that severity and a fix.
expect_problem() {
    local check=$1 sev=$2 text=$3 what=$4 rc=0 out found
    out=$(doctor_json "${skip[@]}") || rc=$?
    phi_assert_eq "$rc" 1 "$what: doctor exits 1"
    found=$(jq -r --arg c "$check" --arg s "$sev" \
        '.problems[] | select(.check == $c and .severity == $s) | .problem + " || fix: " + .fix' <<<"$out")
    phi_assert_contains "$found" "$text" "$what: reported under $check ($sev)"
    phi_assert_match "$found" '\|\| fix: .+' "$what: with a fix"
}

# Each block stages one fault, checks it, and restores the file.
with_file() { # FILE CONTENT: replace FILE's content, keeping the original in FILE.orig
    cp -p "$1" "$1.orig"
    printf '%s\n' "$2" >"$1"
}
# Rewritten in place, never renamed: /etc/nsswitch.conf and /etc/sudoers are
# bind mounts of these very inodes.
restore() { cat "$1.orig" >"$1"; rm "$1.orig"; }

conf=$stage/ssh/sshd_config
with_file "$conf" "$(sed 's/^UsePAM yes/UsePAM no/' "$conf")"
expect_problem sshd error "UsePAM no" "sshd with UsePAM no"
restore "$conf"
# (With keyboard-interactive in AuthenticationMethods sshd refuses the file
# outright, which doctor reports as sshd's own error.)
with_file "$conf" "$(sed 's/^KbdInteractiveAuthentication yes/KbdInteractiveAuthentication no/' "$conf")"
expect_problem sshd warning "cannot read sshd's settings (sshd -T)" "a file sshd itself refuses"
restore "$conf"
with_file "$conf" "$(sed -e 's/^KbdInteractiveAuthentication yes/KbdInteractiveAuthentication no/' \
    -e '/^AuthenticationMethods/d' "$conf")"
expect_problem sshd error "KbdInteractiveAuthentication no" "sshd without keyboard-interactive"
restore "$conf"
with_file "$conf" "$(grep -v '^AuthenticationMethods' "$conf")"
expect_problem sshd error "public key alone" "sshd accepting a key alone"
restore "$conf"
with_file "$conf" "$(sed 's/^PermitRootLogin no/PermitRootLogin prohibit-password/' "$conf")"
expect_problem sshd warning "sshd permits root to log in (PermitRootLogin without-password)" "sshd letting root in"
restore "$conf"

pam=$stage/pam.d/sshd
with_file "$pam" $'@include common-auth\naccount required pam_permit.so'
expect_problem pam error "not in the auth stack of /etc/pam.d/sshd" "sshd's stack without pam_phi"
restore "$pam"
with_file "$pam" $'auth sufficient pam_unix.so\nauth required pam_phi.so'
expect_problem pam error "pam_unix.so (/etc/pam.d/sshd line 1, control sufficient)" "a sufficient module before pam_phi"
restore "$pam"
with_file "$pam" $'auth optional pam_phi.so\n@include common-auth'
expect_problem pam error "pam_phi.so is 'optional'" "pam_phi optional"
restore "$pam"
common=$stage/pam.d/common-auth
with_file "$common" "$(sed 's/success=1/success=3/' "$common")"
expect_problem pam error "pam_unix.so (/etc/pam.d/common-auth line 1, control [success=3 default=ignore])" \
    "an included jump that lands past pam_phi"
restore "$common"
with_file "$stage/pam.d/sudo" '@include common-auth'
expect_problem pam warning "not in the auth stack of /etc/pam.d/sudo" "sudo's stack without pam_phi"
restore "$stage/pam.d/sudo"

with_file "$stage/sudoers" $'root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d'
expect_problem sudoers error "/etc/sudoers.d/phi line 1" "a %phi-* rule without group_source=dynamic"
restore "$stage/sudoers"

with_file "$stage/nsswitch.conf" $'passwd: files phi\ngroup: files systemd\nhosts: files'
expect_problem nsswitch error "no phi on its group: line" "nsswitch.conf without phi for groups"
restore "$stage/nsswitch.conf"

chmod 644 /etc/phi/master.key
expect_problem permissions error "/etc/phi/master.key (the key that seals every TOTP seed) has mode 0644" \
    "a master key others can read"
chmod 600 /etc/phi/master.key
chown 65534 /etc/phi/phiaccessd.conf
expect_problem permissions error "/etc/phi/phiaccessd.conf (the daemon's configuration) is owned by uid 65534" \
    "a config owned by another user"
chown 0 /etc/phi/phiaccessd.conf

# The directory in the clear, at a name that is not loopback (it resolves to
# 127.0.0.1 through the staged /etc/hosts, so nothing leaves the test).
daemon_stop
DAEMON_EXTRA="allow_insecure = yes" daemon_config "ldap://ldap.test:3890"
daemon_start
wait_users 5
phi_wait_for --timeout 20 --what "connected to ldap.test" status_is directory "ldap://ldap.test:3890"
expect_problem ldap error "ldap://ldap.test:3890 is read without TLS" "a directory reached without TLS"

# Stale identities: the directory goes away and the daemon says so.
phi_slapd_stop
phi_wait_for --timeout 30 --what "outage in status" status_is outage true
expect_problem snapshot warning "unreachable since" "identities served from before an outage"
rc=0; doctor_json "${skip[@]}" --skip snapshot,ldap >/dev/null || rc=$?
phi_assert_eq "$rc" 0 "--skip leaves out the named checks"

daemon_stop
expect_problem daemon error "phiaccessd does not answer" "the daemon stopped"

rc=0; out=$("$PHI_CTL" doctor --skip nonsense 2>&1) || rc=$?
phi_assert_eq "$rc" 2 "an unknown check is a usage error"
phi_assert_contains "$out" "no check 'nonsense'" "and names it"
phi_pass "doctor checked"
