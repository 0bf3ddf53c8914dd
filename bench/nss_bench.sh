#!/usr/bin/env bash
# nss_phi against its peers, through glibc, in one run, on the same data:
#   phi     libnss_phi.so.2 installed where glibc finds it, `passwd: files phi`
#           (the host's own small passwd/group files first, as deployed)
#   phi-alone  the same with `passwd: phi`: glibc and the module, no files
#           module in front (what the module itself costs through glibc)
#   files   glibc's files module with the directory's users and groups in
#           /etc/passwd and /etc/group
#   nslcd   libnss-ldapd + nslcd against the same private slapd (skipped when
#           nslcd is not installed, or with --no-nslcd)
# Everything runs inside private namespaces set up by tests/lib/harness.bash; the
# host is not changed. Prints median ns/call per operation and peer, the ratios
# peer/phi and peer/phi-alone, then nss_phi alone at --big users (default 100,000) with the cold
# first call, through glibc and with the module called directly, beside
# glibc's own per-lookup floor (its stat() of /etc/nsswitch.conf).
#
# Usage: bench/nss_bench.sh [--users N] [--groups M] [--big N] [--seconds S] [--no-nslcd]
# Needs root and a build in build/ (PHI_BUILD_DIR to use another).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$here/../tests/lib/harness.bash"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/nss_lib.bash
source "$here/../tests/integration/nss_lib.bash"

users=10000 groups=2000 big=100000 seconds=1 nslcd=1
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --users) users=$2; shift 2 ;;
        --groups) groups=$2; shift 2 ;;
        --big) big=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --no-nslcd) nslcd=0; shift ;;
        *) echo "usage: $0 [--users N] [--groups M] [--big N] [--seconds S] [--no-nslcd]" >&2; exit 2 ;;
    esac
done
phi_harness_init "${args[@]}"
nss_init
bench=$PHI_BUILD_DIR/bench/nss_bench
[ -x "$bench" ] || phi_die "build first: $bench is missing"
if [ "$nslcd" = 1 ] && ! command -v nslcd >/dev/null && [ ! -x /usr/sbin/nslcd ]; then
    phi_log "nslcd is not installed (apt-get install nslcd libnss-ldapd): skipping that peer"
    nslcd=0
fi
PATH=$PATH:/usr/sbin

suffix=dc=example,dc=org
phi_gen_ldif --suffix "$suffix" --users "$users" --groups "$groups" >"$PHI_TMP/dir.ldif"
phi_slapd_start "$suffix" "$PHI_TMP/dir.ldif"
nss_directory_files "$suffix"
nss_install
"$NSS_MKSNAP" --passwd <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd") \
    --group <(sed 's/:\*:/:x:/' "$PHI_TMP/dir.group") "$NSS_SNAPSHOT"

# One nsswitch.conf, passwd and group per peer.
mkdir -p "$PHI_TMP/phi" "$PHI_TMP/phi-alone" "$PHI_TMP/files" "$PHI_TMP/nslcd"
printf 'passwd: files phi\ngroup: files phi\n' >"$PHI_TMP/phi/nsswitch.conf"
printf 'passwd: phi\ngroup: phi\n' >"$PHI_TMP/phi-alone/nsswitch.conf"
printf 'passwd: files\ngroup: files\n' >"$PHI_TMP/files/nsswitch.conf"
printf 'passwd: files ldap\ngroup: files ldap\n' >"$PHI_TMP/nslcd/nsswitch.conf"
for peer in phi phi-alone nslcd; do
    cp /etc/passwd /etc/group "$PHI_TMP/$peer/"
done
{ cat /etc/passwd; sed 's/:\*:/:x:/' "$PHI_TMP/dir.passwd"; } >"$PHI_TMP/files/passwd"
{ cat /etc/group; sed 's/:\*:/:x:/' "$PHI_TMP/dir.group"; } >"$PHI_TMP/files/group"

if [ "$nslcd" = 1 ]; then
    cat >"$PHI_TMP/nslcd.conf" <<EOF
uid nslcd
gid nslcd
uri $PHI_LDAP_URI
base $suffix
EOF
    chmod 640 "$PHI_TMP/nslcd.conf"
    chgrp nslcd "$PHI_TMP/nslcd.conf"
    mount --bind "$PHI_TMP/nslcd.conf" /etc/nslcd.conf   # this test's mount namespace only
    phi_private_dir /run/nslcd
    chown nslcd:nslcd /run/nslcd
    phi_spawn nslcd nslcd -n
    phi_wait_for --timeout 10 --what "nslcd socket" test -S /run/nslcd/socket ||
        phi_die "nslcd did not start: $(tail -n 20 "$PHI_TMP/nslcd.log")"
fi

# run_peer PEER [NSS_BENCH ARGS...]: nss_bench through glibc with PEER's files.
run_peer() {
    local peer=$1
    shift
    (
        unset LD_PRELOAD PHI_NSS_SNAPSHOT
        # shellcheck disable=SC2031 # a subshell on purpose
        [ -z "$NSS_SAN_PRELOAD" ] || export LD_PRELOAD=$NSS_SAN_PRELOAD
        phi_ns_run --bind "$PHI_TMP/$peer/nsswitch.conf:/etc/nsswitch.conf" \
            --bind "$PHI_TMP/$peer/passwd:/etc/passwd" --bind "$PHI_TMP/$peer/group:/etc/group" \
            -- "$bench" "$@"
    )
}

field() { # LINE KEY
    sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"
}

peers=(phi phi-alone files)
[ "$nslcd" = 1 ] && peers+=(nslcd)
declare -A median first
for peer in "${peers[@]}"; do
    phi_log "timing $peer ($users users, $groups groups)"
    while IFS= read -r line; do
        op=$(sed -n 's/^op=\([a-z]*\).*/\1/p' <<<"$line")
        [ -n "$op" ] || continue
        median[$peer.$op]=$(field "$line" median_ns)
        first[$peer.$op]=$(field "$line" first_ns)
        fails=$(field "$line" failures)
        [ "$fails" = 0 ] || phi_log "WARNING: $peer $op: $fails lookups failed"
    done < <(run_peer "$peer" --users "$users" --groups "$groups" --seconds "$seconds")
done

printf '\n%s users, %s groups: median ns per call through glibc (first call of the process in brackets)\n' "$users" "$groups"
printf '%-11s' op
for peer in "${peers[@]}"; do printf ' %22s' "$peer"; done
for peer in "${peers[@]:2}"; do printf ' %12s %18s' "$peer/phi" "$peer/phi-alone"; done
printf '\n'
for op in getpwnam getpwuid getgrnam initgroups; do
    printf '%-11s' "$op"
    for peer in "${peers[@]}"; do
        printf ' %22s' "${median[$peer.$op]} [${first[$peer.$op]}]"
    done
    for peer in "${peers[@]:2}"; do
        awk -v a="${median[$peer.$op]}" -v b="${median[phi.$op]}" -v c="${median[phi-alone.$op]}" \
            'BEGIN { printf " %11.0fx %17.0fx", (b > 0 ? a / b : 0), (c > 0 ? a / c : 0) }'
    done
    printf '\n'
done

# nss_phi alone at a larger size: a synthetic snapshot, no directory needed.
phi_log "timing phi at $big users"
big_groups=$((big / 10))
"$NSS_MKSNAP" --synthetic "$big:$big_groups:5" "$NSS_SNAPSHOT"
printf '\nnss_phi at %s users, %s groups (snapshot %s bytes)\n' "$big" "$big_groups" "$(stat -c %s "$NSS_SNAPSHOT")"
run_peer phi --users "$big" --groups "$big_groups" --seconds "$seconds" | sed 's/^/  files phi  /'
run_peer phi-alone --users "$big" --groups "$big_groups" --seconds "$seconds" | sed 's/^/  phi alone  /'
# glibc's floor: the stat() of nsswitch.conf it makes before every lookup,
# whatever the module. phi-alone minus this is what the module adds.
run_peer phi-alone --seconds "$seconds" nsswitch_stat | sed 's/^/  glibc floor /'
PHI_NSS_SNAPSHOT=$NSS_SNAPSHOT "$bench" --direct "$NSS_MODULE" --users "$big" --groups "$big_groups" \
    --seconds "$seconds" | sed 's/^/  module direct /'
# Cold: a fresh process's first lookup, several times; then the module alone
# (no glibc NSS set-up in front: its own open, fstat, mmap and first probe).
for i in 1 2 3; do
    run_peer phi-alone --users "$big" --groups "$big_groups" --seconds 0.01 getpwnam | sed 's/^/  cold glibc   /'
done
for i in 1 2 3; do
    PHI_NSS_SNAPSHOT=$NSS_SNAPSHOT "$bench" --direct "$NSS_MODULE" --users "$big" --groups "$big_groups" \
        --seconds 0.2 getpwnam | sed 's/^/  cold direct  /'
done
phi_pass "benchmark finished"
