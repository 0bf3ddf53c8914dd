# shellcheck shell=bash
# Helpers shared by the TOTP integration tests (totp_test.sh, totp_sshd_test.sh,
# and bench/totp-bench). Source after tests/lib/harness.bash and call
# totp_setup after phi_harness_init.
#
# What they set up, all private to the test:
#   - a journald (phi_journald_start), so the daemon's events can be read back;
#   - /run/phiaccessd (private dir) for the daemon's socket at its real path;
#   - $TOTP_DIR with the daemon's config, store, master key, a passwd and group
#     file naming the test users (uids 2001..), and pam.d/ for PAM stacks;
#   - phiaccessd itself (totp_daemon_start).
# Codes are computed with oathtool from the seed each user's enrolment printed.

TOTP_USERS=(alice bob carol dave erin frank grace heidi ivan judy)
TOTP_SOCKET=/run/phiaccessd/socket
declare -gA TOTP_UID=() TOTP_LAST=()

totp_setup() {
    local i=0 u tool
    # ./scripts/setup installs them: a missing one is a broken set-up, not a skip.
    for tool in oathtool expect; do
        command -v "$tool" >/dev/null || phi_die "$tool is missing; run ./scripts/setup"
    done
    phi_journald_start
    phi_private_dir /run/phiaccessd
    TOTP_DIR=$PHI_TMP/phi
    mkdir -p "$TOTP_DIR/pam.d"
    chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$TOTP_DIR"
    {
        echo "root:x:0:0:root:/root:/bin/bash"
        for u in "${TOTP_USERS[@]}"; do
            i=$((i + 1))
            TOTP_UID[$u]=$((2000 + i))
            echo "$u:x:${TOTP_UID[$u]}:${TOTP_UID[$u]}:$u:$PHI_TMP/home/$u:/bin/sh"
        done
    } >"$TOTP_DIR/passwd"
    printf 'root:x:0:\nphi-admins:x:3000:\n' >"$TOTP_DIR/group"
    TOTP_CONF=$TOTP_DIR/phiaccessd.conf
    # Nothing listens on 3999: the directory is unreachable, which TOTP does not
    # need (local users come from passwd_file; their tokens belong to local:UID).
    cat >"$TOTP_CONF" <<CONF
[ldap]
uri = ldap://127.0.0.1:3999
base = dc=example,dc=org
tls = none

[store]
path = $TOTP_DIR/phi.db

[daemon]
socket = $TOTP_SOCKET
snapshot = $TOTP_DIR/nss.snapshot
passwd_file = $TOTP_DIR/passwd
group_file = $TOTP_DIR/group

[totp]
master_key = $TOTP_DIR/master.key
create_master_key = yes
issuer = phi test
${TOTP_EXTRA_CONFIG:-}
CONF
    chmod 0600 "$TOTP_CONF"
}

totp_daemon_start() {
    phi_spawn phiaccessd "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --config "$TOTP_CONF"
    TOTP_DAEMON_PID=$PHI_LAST_PID
    phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$TOTP_SOCKET" ||
        phi_die "phiaccessd did not start"
}

totp_daemon_stop() {
    phi_stop_pid "$TOTP_DAEMON_PID"
    phi_wait_for --timeout 5 --what "socket removed" test ! -e "$TOTP_SOCKET" || true
}

# totp_phictl_as USER ARGS...: phictl with USER's uid (SO_PEERCRED decides who asks).
totp_phictl_as() {
    local user=$1
    shift
    if [ "$user" = root ]; then
        "$PHI_BUILD_DIR/phiaccessd/phictl" "$@"
    else
        setpriv --reuid="${TOTP_UID[$user]}" --regid="${TOTP_UID[$user]}" --clear-groups -- \
            "$PHI_BUILD_DIR/phiaccessd/phictl" "$@"
    fi
}

# totp_enroll USER [WRONG_CODES]: ticket (as root), then `phictl totp enroll` as
# USER on a pty (expect): reads the URI, optionally types wrong codes first,
# then the right one (with 3 wrong codes phictl gives up: no right one). The base32 seed is kept in $TOTP_DIR/secret.USER and the
# step used for activation becomes USER's watermark.
totp_enroll() {
    local user=$1 wrong=${2:-0}
    totp_phictl_as root totp issue "$user" --expires 1h >/dev/null
    TOTP_ENROLL_OUT=$PHI_TMP/enroll.$user.out
    totp_phictl_enroll_expect "$user" "$wrong" >"$TOTP_ENROLL_OUT" 2>&1 ||
        phi_fail "enrolment of $user" "$(cat "$TOTP_ENROLL_OUT")"
    TOTP_LAST[$user]=$(cat "$TOTP_DIR/step.$user")
}

totp_phictl_enroll_expect() {
    local user=$1 wrong=$2
    # shellcheck disable=SC2016 # Tcl, not shell
    expect -f - -- "$PHI_BUILD_DIR/phiaccessd/phictl" "${TOTP_UID[$user]}" "$wrong" \
        "$TOTP_DIR/secret.$user" "$TOTP_DIR/step.$user" <<'EXP'
set timeout 20
lassign $argv phictl uid wrong secret_file step_file
spawn setpriv --reuid=$uid --regid=$uid --clear-groups -- $phictl totp enroll
expect {
    -re {otpauth://totp/[^\r\n]*secret=([A-Z2-7]+)[^\r\n]*} { set secret $expect_out(1,string) }
    timeout { puts "no otpauth URI"; exit 1 }
    eof { puts "phictl ended before the URI"; exit 1 }
}
set f [open $secret_file w]; puts $f $secret; close $f
for {set i 0} {$i < $wrong} {incr i} {
    expect "Code from your authenticator app: "
    send "000000\r"
    expect {
        "wrong code" {}
        timeout { puts "no refusal of a wrong code"; exit 1 }
    }
}
# phictl gives up after three wrong codes.
if {$wrong >= 3} {
    expect {
        "not activated" { expect eof; exit 0 }
        timeout { puts "phictl did not give up"; exit 1 }
    }
}
expect "Code from your authenticator app: "
set now [clock seconds]
set step [expr {$now / 30}]
set code [exec oathtool --totp -b $secret -N "@[expr {$step * 30}]"]
send "$code\r"
expect {
    "Token active" {}
    timeout { puts "token not activated"; exit 1 }
    eof { puts "phictl ended without activating"; exit 1 }
}
expect eof
set f [open $step_file w]; puts $f $step; close $f
EXP
}

totp_secret() {
    cat "$TOTP_DIR/secret.$1"
}

# totp_code USER STEP: the code of STEP, computed by oathtool.
totp_code() {
    oathtool --totp -b "$(totp_secret "$1")" -N "@$(($2 * 30))"
}

totp_now_step() {
    echo $(($(date +%s) / 30))
}

# totp_fresh_step USER: a step above USER's watermark that the daemon accepts
# now (now or the next one); waits when both are used up. The caller records
# a success with TOTP_LAST[USER]=STEP.
totp_fresh_step() {
    local user=$1 last=${TOTP_LAST[$1]:-0} cur
    cur=$(totp_now_step)
    while [ $((last + 1)) -gt $((cur + 1)) ]; do
        sleep 1
        cur=$(totp_now_step)
    done
    if [ $((last + 1)) -gt "$cur" ]; then
        echo $((last + 1))
    else
        echo "$cur"
    fi
}

# totp_stack NAME LINE...: a PAM service file in $TOTP_DIR/pam.d.
totp_stack() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$TOTP_DIR/pam.d/$name"
}

# totp_pam SERVICE USER [pam_driver args]: prints the PAM result's name.
totp_pam() {
    local service=$1 user=$2
    shift 2
    timeout 20 "$PHI_BUILD_DIR/tests/pam_driver" --confdir "$TOTP_DIR/pam.d" --service "$service" \
        --user "$user" "$@" 2>>"$PHI_TMP/pam_driver.log" || true
}

# totp_qr_decode FILE: what a scanner reads from the QR code phictl drew in
# FILE (a terminal transcript). The half-block characters are turned back into
# modules (each text line is two rows: full block = both light, upper half =
# top light, lower half = bottom light, space = both dark), drawn 4 pixels a
# module with a wide light border into a PBM, and read with zbarimg.
totp_qr_decode() {
    local img=$PHI_TMP/qr.pbm
    tr -d '\r' <"$1" |
        grep -E '^(█|▀|▄| )+$' | grep -E '▀|▄' |
        sed -e 's/█/F/g' -e 's/▀/U/g' -e 's/▄/L/g' -e 's/ /D/g' |
        awk -v scale=4 -v border=8 '
            { line[NR] = $0; if (length($0) > w) w = length($0) }
            function row(top,    s, i, c, dark) {
                s = ""
                for (i = 0; i < border; i++) s = s "0"
                for (i = 1; i <= w; i++) {
                    c = substr(cur, i, 1)
                    dark = top ? (c == "L" || c == "D") : (c == "U" || c == "D")
                    s = s (dark ? "1" : "0")
                }
                for (i = 0; i < border; i++) s = s "0"
                return s
            }
            function emit(bits,    i, j, out) {
                out = ""
                for (i = 1; i <= length(bits); i++)
                    for (j = 0; j < scale; j++) out = out substr(bits, i, 1) " "
                for (j = 0; j < scale; j++) print out
            }
            END {
                if (NR == 0) exit 1
                blank = ""
                for (i = 0; i < w + 2 * border; i++) blank = blank "0"
                print "P1"; print (w + 2 * border) * scale, (2 * NR + 2 * border) * scale
                for (i = 0; i < border; i++) emit(blank)
                for (n = 1; n <= NR; n++) { cur = line[n]; emit(row(1)); emit(row(0)) }
                for (i = 0; i < border; i++) emit(blank)
            }' >"$img" || return 1
    zbarimg --quiet --raw "$img" 2>/dev/null
}
