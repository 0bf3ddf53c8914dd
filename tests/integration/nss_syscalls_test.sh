#!/usr/bin/env bash
# No system call on nss_phi's hot path: the module's lookups (getpwnam,
# getgrgid, initgroups_dyn) are run 10 and 20,000 times under strace; the number
# of system calls must not grow with them (the first lookup maps the file; every
# later one reads memory only, including the check for a replaced snapshot), with
# the grants snapshot beside it holding grants those lookups read. The one
# allowance: the safety-net inode check, at most one stat() per second of run
# time for each of the two files (a slow sanitizer build may cross a second or
# two).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=nss_lib.bash
source "$(dirname "$0")/nss_lib.bash"
phi_harness_init "$@"
nss_init
loop=$PHI_BUILD_DIR/tests/tools/phi-nss-loop
[ -x "$loop" ] || phi_die "phi-nss-loop is not built"
command -v strace >/dev/null || phi_die "strace is missing; run ./scripts/setup"

"$NSS_MKSNAP" --synthetic 10000:2000:5:50 "$PHI_TMP/nss.snapshot"
"$PHI_BUILD_DIR/tests/tools/phi-mkgrants" --grant phi-dba:30000:biguser:+3600:1 \
    --grant grp00001:20001:user00001:+3600:2 "$PHI_TMP/grants.snapshot"
export PHI_NSS_SNAPSHOT=$PHI_TMP/nss.snapshot
# shellcheck disable=SC2031 # set here for the rest of this script
[ -z "$NSS_SAN_PRELOAD" ] || export LD_PRELOAD=$NSS_SAN_PRELOAD

# syscalls COUNT: how many system calls a run with COUNT rounds makes.
syscalls() {
    strace -f -c -o "$PHI_TMP/strace.$1" "$loop" "$NSS_MODULE" biguser 20001 "$1" >/dev/null
    awk '$NF == "total" { print $4 }' "$PHI_TMP/strace.$1"
}
few=$(syscalls 10)
start=$(date +%s)
many=$(syscalls 20000)
seconds=$(($(date +%s) - start + 1))
phi_assert_match "$few" '^[0-9]+$' "strace counted the system calls"
if [ "$many" -le $((few + 2 * seconds)) ]; then
    phi_pass "60,000 lookups make no more system calls than 30 ($few, $many; run ${seconds}s)"
else
    phi_fail "system calls grow with lookups: $few for 30, $many for 60,000 in ${seconds}s" \
        "$(cat "$PHI_TMP/strace.20000")"
fi
