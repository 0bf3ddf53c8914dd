#!/usr/bin/env bash
# The README's quick start, as a new administrator types it, keeps printing
# what the README shows. README.md is the only source: the commands are read
# from its quick start (between <!-- quickstart:begin --> and
# <!-- quickstart:end -->, see quickstart.py) and run one after the other, on
# a pseudo-terminal like a person's, on a throwaway Debian machine with the
# packages built from this tree: the host "host1" of the README is an overlay
# of this host's root in private namespaces (deb-lib.bash), with its own host
# name, ssh host keys, journald and loopback network, and a real sshd. Then
# what each command printed is compared with what the README shows under it,
# after the normalisation quickstart.py documents (times, seeds, codes, the
# QR code, versions, sizes, the kernel); a README that drifts fails with a
# diff per command.
#
# Where the throwaway machine is not a booted host, the test does what
# systemd would do there, and says so at each place: it starts phiaccessd
# from the installed unit after the install (the package's own start needs a
# running systemd), and stands in for `systemctl reload ssh` with what
# ssh.service's reload runs (sshd -t), then starts sshd as its ExecStart does.
# The README's commands stay what a real host runs. The host itself is not
# touched (deb-lib.bash checks its /etc, dpkg database and name outside).
#
# Given as the README's premise, not one of its commands: alice is a local
# account with a password (adduser alice), and the laptop alice logs in from
# knows host1's host key (here: the machine's /etc/ssh/ssh_known_hosts; the
# client runs on host1 itself, as alice).
#
# PHI_QUICKSTART_OUT=DIR keeps what each command printed, as N.out, for
# whoever updates the README.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=deb-lib.bash
source "$(dirname "$0")/deb-lib.bash"
phi_harness_init "$@"

for tool in expect oathtool python3 ssh ssh-keygen /usr/sbin/sshd; do
    command -v "$tool" >/dev/null || phi_die "$tool is missing; run ./scripts/setup"
done
README=$PHI_SOURCE_DIR/README.md
QS=$PHI_SOURCE_DIR/tests/integration/quickstart.py
HOST=host1
ALICE_PW=phi-alice-pw

commands=$(python3 "$QS" commands "$README") || phi_fail "README.md's quick start can be read" "$commands"
mapfile -t COMMANDS <<<"$commands"
phi_assert_match "${#COMMANDS[@]}" '^([1-9]|10)$' "the quick start has at most ten commands (${#COMMANDS[@]})"
phi_assert_match "${COMMANDS[0]}" $'^root\t'"$HOST"$'\t~\tapt install ' "it begins with apt install, as root on $HOST"

# ---------------------------------------------------------------------------
# The machine.

deb_build
deb_machine
hostname "$HOST"
echo "$HOST" >"$DEB_ROOT/etc/hostname"
printf '127.0.1.1\t%s\n' "$HOST" >>"$DEB_ROOT/etc/hosts"
# Its own ssh host keys (the host's are never read), known to alice's client.
rm -f "$DEB_ROOT"/etc/ssh/ssh_host_*
in_root ssh-keygen -A >/dev/null
for pub in "$DEB_ROOT"/etc/ssh/ssh_host_*_key.pub; do
    printf '%s %s\n' "$HOST" "$(cut -d ' ' -f 1,2 "$pub")"
done >"$DEB_ROOT/etc/ssh/ssh_known_hosts"
in_root adduser --quiet --disabled-password --comment '' alice
echo "alice:$ALICE_PW" | in_root chpasswd
# The packages where the README's apt install finds them: root's home.
cp "${DEB[@]}" "$DEB_ROOT/root/"

# ---------------------------------------------------------------------------
# The commands, each on a pseudo-terminal (80x24, TERM=xterm-256color),
# answering the prompts as the person would: the code from the app (oathtool
# on the seed in the URI phictl showed), alice's password, and at the shell
# the login opened, exit. What the person saw is on standard output.

QS_DIR=$PHI_TMP/quickstart
mkdir -p "$QS_DIR"
cat >"$QS_DIR/drive.exp" <<'EXP'
set timeout 240
set stty_init "rows 24 cols 80"
lassign $argv state password
set argv [lrange $argv 2 end]
proc code_at {secret step} { return [exec oathtool --totp -b $secret -N @[expr {$step * 30}]] }
proc last_step {state} {
    if {[file exists $state/step]} { set f [open $state/step]; set s [string trim [read $f]]; close $f; return $s }
    return 0
}
proc save {file value} { set f [open $file w]; puts $f $value; close $f }
spawn -noecho {*}$argv
expect {
    -re {secret=([A-Z2-7]+)} { save $state/secret $expect_out(1,string); exp_continue }
    -re {Code from your authenticator app: $} {
        set f [open $state/secret]; set secret [string trim [read $f]]; close $f
        set step [expr {[clock seconds] / 30}]
        send -- "[code_at $secret $step]\r"
        save $state/step $step
        exp_continue
    }
    -re {Password: $} { send -- "$password\r"; exp_continue }
    -re {Verification code: $} {
        set f [open $state/secret]; set secret [string trim [read $f]]; close $f
        # A step not used yet: now, or the one after the last (the window of
        # one step either side takes it).
        set step [expr {max([clock seconds] / 30, [last_step $state] + 1)}]
        send -- "[code_at $secret $step]\r"
        save $state/step $step
        exp_continue
    }
    -re {\n[^\n]*[a-z]+@[a-z0-9-]+[^\n]*:[^\n]*~[^\n]*\$ $} { log_user 0; send -- "exit\r"; exp_continue }
    timeout { puts "\nEXPECT: timed out"; exit 124 }
    eof {}
}
exit [lindex [wait] 3]
EXP

# run_as USER DIR CMD: CMD in bash -c on the machine, as USER, in DIR, with
# the environment of a login there.
run_as() {
    local user=$1 dir=$2 cmd=$3 home
    home=$(in_root getent passwd "$user" | cut -d: -f6)
    [ "$dir" != "~" ] || dir=$home
    local -a env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        "HOME=$home" "USER=$user" "LOGNAME=$user" SHELL=/bin/bash LANG=C.UTF-8 TERM=xterm-256color)
    # debconf's default frontend draws with whiptail, which a standard Debian
    # install has; where this machine has neither it nor dialog, the frontend
    # it falls back to takes its place, without the complaint about the
    # missing program (no package here asks a question either way).
    if ! in_root sh -c 'command -v whiptail || command -v dialog' >/dev/null; then
        env+=(DEBIAN_FRONTEND=readline)
    fi
    local -a as=()
    [ "$user" = root ] || as=(setpriv "--reuid=$user" "--regid=$user" --init-groups)
    # shellcheck disable=SC2016 # for the inner bash
    timeout 300 expect -f "$QS_DIR/drive.exp" -- "$QS_DIR" "$ALICE_PW" \
        chroot "$DEB_ROOT" "${as[@]}" "${env[@]}" bash -c 'cd "$1" && eval "$2"' quickstart "$dir" "$cmd"
}

sshd_start() {
    # ssh.service: ExecStart=/usr/sbin/sshd -D (its RuntimeDirectory is made).
    # -e: its log to the test's file (no syslog socket in the chroot).
    phi_spawn sshd chroot "$DEB_ROOT" /usr/sbin/sshd -D -e
    phi_wait_for --timeout 15 --what "sshd's pid file" test -s "$DEB_ROOT/run/sshd.pid" ||
        phi_fail "sshd started" "$(tail -n 20 "$PHI_TMP/sshd.log")"
}

cursor=$(phi_journal_cursor)
drift=()
for i in "${!COMMANDS[@]}"; do
    IFS=$'\t' read -r user machine dir cmd <<<"${COMMANDS[i]}"
    out=$QS_DIR/$i.out
    phi_log "quick start $((i + 1)): $user@$machine: $cmd"
    case "$machine" in
        "$HOST") ;;
        # The client alice logs in from; here it runs on host1 (as alice).
        laptop) [ "$user" != root ] || phi_die "the quick start runs nothing as root on the laptop" ;;
        *) phi_die "the quick start names a machine the test does not know: $machine" ;;
    esac
    rc=0
    if [ "$cmd" = "systemctl reload ssh" ]; then
        # No systemd here: what ssh.service's ExecReload runs first (sshd -t,
        # which prints only problems; it wants the RuntimeDirectory), then
        # sshd itself, since none runs yet.
        mkdir -p "$DEB_ROOT/run/sshd"
        chmod 0755 "$DEB_ROOT/run/sshd"
        in_root /usr/sbin/sshd -t >"$out" 2>&1 || rc=$?
        [ "$rc" != 0 ] || sshd_start
    else
        run_as "$user" "$dir" "$cmd" >"$out" 2>&1 || rc=$?
    fi
    want_rc=0
    if [ "$cmd" = "phictl doctor" ]; then
        # doctor exits 1 when it names a problem (phictl(1)).
        grep -q '^no problems found' "$out" || want_rc=1
        # The README's host keeps its clock synchronised (systemd-timesyncd,
        # which Debian installs with systemd); where this machine's is not,
        # doctor rightly says so, and that finding is this machine's, not
        # the README's.
        if ! python3 "$QS" clock-synced; then
            phi_log "this machine's clock is not synchronised: doctor's clock finding is left out"
            sed -i '/^error   clock /,/^ *fix: /d' "$out"
        fi
    fi
    if [ -n "${PHI_QUICKSTART_OUT:-}" ]; then
        mkdir -p "$PHI_QUICKSTART_OUT"
        python3 "$QS" screen "$out" >"$PHI_QUICKSTART_OUT/$i.out"
    fi
    [ "$rc" = "$want_rc" ] || phi_fail "quick start $((i + 1)) ($cmd) exits $want_rc, not $rc" "$(cat "$out")"
    phi_pass "quick start $((i + 1)) ($cmd) exits $want_rc"
    if [[ "$cmd" == "apt install "* ]]; then
        # shellcheck disable=SC2016 # dpkg-query's ${field}, not the shell's
        phi_assert_eq "$(in_root dpkg-query -W -f '${db:Status-Abbrev}\n' "${DEB_PACKAGES[@]}")" \
            $'ii \nii \nii ' "apt install installed and configured the three packages"
        # The package starts the service only where systemd runs; the test
        # starts it from the installed unit, as systemd would have, and lets
        # it try the directory once, as it has on a host by the time its
        # administrator has read apt's output.
        sync_cursor=$(phi_journal_cursor)
        deb_daemon_start
        phi_journal_wait --timeout 15 --after "$sync_cursor" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=ldap_sync \
            >/dev/null || phi_fail "the daemon tried the directory" "$(tail -n 20 "$PHI_TMP/phiaccessd.log")"
    fi
    if diff=$(python3 "$QS" check "$README" "$i" "$out"); then
        phi_pass "quick start $((i + 1)) prints what the README shows"
    else
        drift+=("$diff")
    fi
done
if [ "${#drift[@]}" -gt 0 ]; then
    phi_fail "the README's quick start shows what its commands print" "$(printf '%s\n' "${drift[@]}")"
fi

# ---------------------------------------------------------------------------
# And the login was what the README says it is.

ok=$(phi_journal_wait --first --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_ok \
    PHI_USER=alice PHI_SERVICE=sshd) || phi_fail "alice's ssh login passed pam_phi (auth_ok, service sshd)"
# The laptop is this machine: its address, towards host1, is loopback's.
phi_assert_eq "$(phi_json_field PHI_RHOST <<<"$ok")" 127.0.0.1 "from the client's address"
granted=$(phi_journal_wait --first --timeout 10 --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd \
    PHI_EVENT=access_granted PHI_USER=alice PHI_SERVICE=sshd) ||
    phi_fail "the policy let alice use sshd (access_granted)"
phi_assert_eq "$(phi_json_field PHI_RULE <<<"$granted")" phi-admins "by the shipped rule for phi-admins"
phi_assert_contains "$(cat "$PHI_TMP/sshd.log")" "Accepted keyboard-interactive/pam for alice" \
    "sshd let alice in by keyboard-interactive through PAM"
