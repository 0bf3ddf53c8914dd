#!/usr/bin/env bash
# The shipped systemd units: systemd itself parses them without a single
# complaint (an unknown or misspelt key is only a warning to systemd, so a
# hardening line with a typo would silently do nothing), and the service's
# sandbox keeps systemd's own exposure rating low (a dropped hardening line
# raises it).
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
phi_harness_init "$@"

command -v systemd-analyze >/dev/null || phi_die "systemd-analyze is missing"
units=$PHI_TMP/units
mkdir -p "$units"
# ExecStart must name an executable that exists: this build's.
sed "s#/usr/sbin/phiaccessd#$PHI_BUILD_DIR/phiaccessd/phiaccessd#g" \
    "$PHI_SOURCE_DIR/phiaccessd/phiaccessd.service" >"$units/phiaccessd.service"
cp "$PHI_SOURCE_DIR/phiaccessd/phiaccessd.socket" "$PHI_SOURCE_DIR/phiaccessd/phiaccessd-pam.socket" "$units/"

out=$(systemd-analyze verify --man=no "$units/phiaccessd.service" "$units/phiaccessd.socket" \
    "$units/phiaccessd-pam.socket" 2>&1) || phi_fail "systemd-analyze verify failed" "$out"
phi_assert_eq "$out" "" "systemd parses the three units without a warning"
# The daemon takes its sockets by these names; the PAM one is root's alone.
phi_assert_contains "$(cat "$units/phiaccessd.socket")" "FileDescriptorName=main" "the request socket is named main"
phi_assert_contains "$(cat "$units/phiaccessd-pam.socket")" "FileDescriptorName=pam" "the PAM socket is named pam"
phi_assert_contains "$(cat "$units/phiaccessd-pam.socket")" "SocketMode=0600" "the PAM socket is root's alone"
phi_assert_contains "$(cat "$units/phiaccessd.service")" "LimitCORE=0" "no core file may hold an unsealed seed"

# A unit with a misspelt key must be caught the same way (the check can fail).
{ cat "$units/phiaccessd.service"; echo "ProtectSystm=strict"; } >"$units/typo.service"
out=$(systemd-analyze verify --man=no "$units/typo.service" 2>&1 || true)
phi_assert_contains "$out" "Unknown key" "a misspelt key is reported"

report=$(systemd-analyze security --offline=yes --no-pager "$units/phiaccessd.service" 2>&1) ||
    phi_fail "systemd-analyze security failed" "$report"
exposure=$(sed -n 's/.*Overall exposure level for phiaccessd.service: \([0-9.]*\).*/\1/p' <<<"$report")
phi_assert_match "$exposure" '^[0-9]+\.[0-9]$' "an exposure level is reported ($exposure)"
phi_check "the sandbox keeps exposure at or below 2.5 (systemd: 'OK'), now $exposure" \
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }'
phi_pass "units checked"
