#!/usr/bin/env bash
# totp_bench: durable TOTP verifications through phiaccessd, from many
# concurrent clients, next to pamtester + pam_oath with the same secrets.
#
# In private namespaces (tests/lib/harness.bash): a journald, a slapd holding
# the users (tests/lib/gen-ldif: userNNNNN, uid 10000+i), and phiaccessd with
# its store, master key and socket in the test's temp dir. The daemon learns
# the users from the directory, as deployed; every user is then enrolled
# through the real protocol by `totp_bench enroll` (root issues a ticket, the
# user -- a connection with the user's uid -- enrols and activates with a code).
# A watermark allows one acceptance per user and step, so each acceptance run
# uses users of its own. Then, in the same run:
#   fdatasync      pwrite + fdatasync of one 4 KiB page next to the store: the
#                  floor under any durable answer on this machine;
#   phi            N AUTH requests over T persistent connections, each code
#                  valid and never used: every one is an acceptance whose
#                  watermark is committed (synchronous=FULL) before the answer;
#   phi-connect    the same with a new connection per request, as pam_phi does;
#   phi-wrong      N wrong codes (each commits a failure counter);
#   phi-cK         acceptances from K clients for each K of --sweep: latency
#                  against throughput;
#   phi-c1-irq     one client again, with the client and the verifier thread on
#                  the vCPU that takes the store disk's completion interrupts,
#                  journald and the daemon's other threads on the others (and
#                  floor-irq, the floor so placed): how much of the one-client
#                  time is wake-ups across vCPUs (when that vCPU can be found:
#                  a virtio disk with one request queue, 2 CPUs or more);
#   pam_oath       `pamtester SERVICE USER authenticate` with pam_oath and a
#                  usersfile holding the same secrets (window=1 as phi), N
#                  processes one at a time; pam_oath-cT the same T at a time
#                  (pam_oath refuses a login while another holds its lock, so
#                  most valid codes fail there); pam_oath-wrong wrong codes.
#   pam_phi        the same pamtester processes with pam_phi in the stack,
#                  asking this daemon: the peer's own harness on both sides
#                  (a process per login), serially and T at a time.
# During each run perf counts the fdatasync/fsync calls of the daemon (or of
# pamtester and its children), and `phictl status` (totp_rounds,
# totp_requests) gives the requests per durable transaction.
#
# Usage: bench/totp_bench.sh [--count N] [--threads T] [--sweep "K..."]
#          [--sweep-count M] [--peer-count P] [--no-peer]
#        defaults 10000, 32, "1 2 4 8 16", N/2, N. Needs root (namespaces);
#        build dir $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
phi_harness_init "$@"

count=10000 threads=32 sweep="1 2 4 8 16" sweep_count="" peer_count="" peer=1
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --sweep) sweep=$2; shift 2 ;;
        --sweep-count) sweep_count=$2; shift 2 ;;
        --peer-count) peer_count=$2; shift 2 ;;
        --no-peer) peer=0; shift ;;
        *) phi_die "usage: totp_bench.sh [--count N] [--threads T] [--sweep 'T1 T2...'] [--sweep-count N]" \
               "[--peer-count M] [--no-peer]" ;;
    esac
done
sweep_count=${sweep_count:-$((count / 2))}
peer_count=${peer_count:-$count}
read -r -a sweep_list <<<"$sweep"
users=$((2 * count + (${#sweep_list[@]} + 1) * sweep_count))
# uid 65534 (user55534) is refused by design.
[ "$users" -lt 55534 ] || phi_die "$users users needed; at most 55,533"
command -v pamtester >/dev/null || phi_skip "pamtester is not installed"
[ -e /lib/x86_64-linux-gnu/security/pam_oath.so ] || [ -e /usr/lib/x86_64-linux-gnu/security/pam_oath.so ] ||
    phi_skip "pam_oath (libpam-oath) is not installed"

BENCH=$PHI_BUILD_DIR/bench/totp_bench
CTL=$PHI_BUILD_DIR/phiaccessd/phictl
DIR=$PHI_TMP/phi
SOCKET=$DIR/run/socket
PAM_SOCKET=$DIR/run/pam
SECRETS=$DIR/secrets
suffix=dc=example,dc=org
mkdir -p "$DIR/run"
# The users' own connections (enrolment) need to reach the socket.
chmod 0755 "$PHI_TMP" "$PHI_RUN_DIR" "$DIR" "$DIR/run"

# shellcheck disable=SC2119 # no options: the default journald
phi_journald_start
phi_log "directory with $users users"
phi_gen_ldif --suffix "$suffix" --users "$users" >"$PHI_TMP/users.ldif"
PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"

printf 'root:x:0:0:root:/root:/bin/bash\n' >"$DIR/passwd"
printf 'root:x:0:\nphi-admins:x:3000:\n' >"$DIR/group"
# host_max_failures at its maximum: every request comes from one host, and the
# wrong-code run is meant to measure counting failures, not a locked-out host.
cat >"$DIR/phiaccessd.conf" <<CONF
[ldap]
uri = $PHI_LDAP_URI
base = $suffix
user_base = ou=people,$suffix
group_base = ou=groups,$suffix
tls = none

[store]
path = $DIR/phi.db

[daemon]
socket = $SOCKET
pam_socket = $PAM_SOCKET
snapshot = $DIR/nss.snapshot
passwd_file = $DIR/passwd
group_file = $DIR/group

[totp]
master_key = $DIR/master.key
create_master_key = yes
issuer = phi bench
host_max_failures = 1000000
CONF
chmod 0600 "$DIR/phiaccessd.conf"

ctl() { "$CTL" --socket "$SOCKET" "$@"; }
status_get() { ctl --json status | jq -r --arg k "$1" '.[$k]'; }
status_is() { [ "$(status_get "$1")" = "$2" ]; }

phi_spawn phiaccessd "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --foreground --config "$DIR/phiaccessd.conf"
DAEMON_PID=$PHI_LAST_PID
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$SOCKET" || phi_die "phiaccessd did not start"
phi_wait_for --timeout 300 --interval 0.2 --what "$users users synced" status_is users "$users" ||
    phi_die "the daemon did not load $users users"

result_field() { # LINE KEY
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

phi_log "enrolling $users users through the protocol ($threads at a time)"
enroll=$("$BENCH" enroll --socket "$SOCKET" --first 1 --count "$users" --threads "$threads" --out "$SECRETS")
[ "$(result_field "$enroll" errors)" = 0 ] || phi_die "enrolment failed: $enroll"
[ "$(wc -l <"$SECRETS")" = "$users" ] || phi_die "enrolment wrote $(wc -l <"$SECRETS") secrets"

declare -A RES=() SYNCS=() PER_TX=()
labels=()

ok_line() { # LINE ALLOW_REFUSALS: no transport error; every answer as expected unless allowed
    [ "$(result_field "$1" errors)" = 0 ] && { [ "$2" = 1 ] || [ "$(result_field "$1" unexpected)" = 0 ]; }
}
# perf (linux-perf) counts the sync calls; without it the column says "-".
have_perf=0
perf stat -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1 && have_perf=1
perf_syncs() { # PERF_LOG
    if [ "$have_perf" = 1 ]; then
        awk -F, '/sys_enter_f(data)?sync/ { n += $1 } END { print n + 0 }' "$1"
    else
        echo "-"
    fi
}
# perf_count LOG CMD...: CMD, its children's sync calls counted into LOG.
perf_count() {
    local log=$1
    shift
    if [ "$have_perf" = 1 ]; then
        perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -o "$log" -- "$@"
    else
        "$@"
    fi
}

# run_phi LABEL FIRST COUNT THREADS [totp_bench args]: one daemon run, with
# the daemon's sync calls counted by perf and the group commit read from status.
# The requests come from totp_bench's own client (run_how: AUTH frames on the
# PAM socket) or, for the pam_phi runs, from pamtester processes.
run_how=(auth --socket "$PAM_SOCKET")
run_phi() {
    local label=$1 first=$2 n=$3 t=$4 perf_log=$PHI_TMP/perf.$1 rounds0 req0 line perf_pid cursor
    shift 4
    cursor=$(phi_journal_cursor)
    rounds0=$(status_get totp_rounds)
    req0=$(status_get totp_requests)
    if [ "$have_perf" = 1 ]; then
        perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$DAEMON_PID" \
            -o "$perf_log" 2>/dev/null &
        perf_pid=$!
        sleep 0.5
    fi
    line=$("${bench_prefix[@]}" "$BENCH" "${run_how[@]}" --secrets "$SECRETS" --first "$first" --count "$n" \
        --threads "$t" --label "$label" "$@")
    if [ "$have_perf" = 1 ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
    fi
    if ! ok_line "$line" 0; then
        # Why the daemon refused (the bench printed the users on stderr).
        phi_journal_json --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd PHI_EVENT=auth_fail | tail -n 5 |
            jq -r '"\(.PHI_USER) \(.PHI_REASON) \(.MESSAGE)"' >&2 || true
        phi_die "run $label went wrong: $line"
    fi
    labels+=("$label")
    RES[$label]=$line
    SYNCS[$label]=$(perf_syncs "$perf_log")
    PER_TX[$label]=$(awk -v r="$(( $(status_get totp_requests) - req0 ))" \
        -v n="$(( $(status_get totp_rounds) - rounds0 ))" 'BEGIN { printf "%.1f", n ? r / n : 0 }')
    phi_log "$line syncs=${SYNCS[$label]} requests/tx=${PER_TX[$label]}"
}

# A command prefix for the bench client (the placement run pins it).
bench_prefix=()

# irq_cpu DIR: the CPU that takes the completion interrupts of the disk under
# DIR, when that is one CPU (a virtio disk with a single request queue);
# nothing otherwise (per-CPU queues, as NVMe has, make the question moot).
irq_cpu() {
    local src dev virtio irqs
    src=$(findmnt -n -o SOURCE --target "$1" 2>/dev/null) || return 0
    dev=$(basename "$src")
    [ -e "/sys/class/block/$dev/partition" ] && dev=$(basename "$(dirname "$(readlink -f "/sys/class/block/$dev")")")
    virtio=$(basename "$(readlink -f "/sys/block/$dev/device" 2>/dev/null)")
    [[ "$virtio" == virtio* ]] || return 0
    irqs=$(awk -v q="$virtio-req." 'index($NF, q) == 1 { sub(":", "", $1); print $1 }' /proc/interrupts)
    [ "$(printf '%s\n' "$irqs" | grep -c .)" = 1 ] || return 0
    cut -d, -f1 "/proc/irq/$irqs/effective_affinity_list" 2>/dev/null | cut -d- -f1
}

# place VERIFIER_CPUS OTHER_CPUS: the daemon's verifier thread on the first,
# its other threads and journald on the second.
place() {
    local tid comm moved=""
    while read -r tid comm; do
        taskset -p -c "$([ "$comm" = phi-verifier ] && echo "$1" || echo "$2")" "$tid" >/dev/null
        moved+=" $comm"
    done < <(ps -L -o tid=,comm= -p "$DAEMON_PID")
    for tid in $(pgrep -x systemd-journal); do
        taskset -a -p -c "$2" "$tid" >/dev/null
        moved+=" journald"
    done
    phi_log "placed (verifier on $1, the rest on $2):$moved"
}

# The floors under any durable answer, on the store's file system: the sync
# alone, and a server that does nothing but one sync per request/reply (and
# the same without the sync). The device's flush time drifts from minute to
# minute on a shared VM, so the server floor is measured again right after
# each one-client run, which is the run to hold against it.
# probe LABEL MODE [totp_bench args]
probe() {
    local label=$1 mode=$2 line
    shift 2
    line=$("${bench_prefix[@]}" "$BENCH" "$mode" --out "$DIR/fsync-probe" --count 2000 --label "$label" "$@")
    rm -f "$DIR/fsync-probe" "$DIR/fsync-probe.db" "$DIR/fsync-probe.db-wal" "$DIR/fsync-probe.db-shm"
    phi_log "$line"
    labels+=("$label")
    RES[$label]=$line
    SYNCS[$label]=$(result_field "$line" n)
    PER_TX[$label]="-"
}
probe fdatasync fsync
probe floor-rtt floor --no-sync
SYNCS[floor-rtt]="-"
probe floor floor
probe floor-sqlite floor --sqlite

now_step() { echo $(($(date +%s) / 30)); }
next=1
phi_step=$(now_step)
run_phi phi "$next" "$count" "$threads"
next=$((next + count))
connect_step=$(now_step)
run_phi phi-connect "$next" "$count" "$threads" --reconnect
next=$((next + count))
run_phi phi-wrong 1 "$count" "$threads" --wrong
for t in "${sweep_list[@]}"; do
    run_phi "phi-c$t" "$next" "$sweep_count" "$t"
    next=$((next + sweep_count))
    [ "$t" = 1 ] && probe floor-after-c1 floor
done
IRQ_CPU=$(irq_cpu "$DIR")
if [ -n "$IRQ_CPU" ] && [ "$(nproc)" -ge 2 ]; then
    all_cpus=$(taskset -p -c "$DAEMON_PID" | sed 's/.*: //')
    other_cpus=$(seq 0 $(($(nproc) - 1)) | grep -vx "$IRQ_CPU" | paste -sd,)
    place "$IRQ_CPU" "$other_cpus"
    bench_prefix=(taskset -c "$IRQ_CPU")
    run_phi phi-c1-irq "$next" "$sweep_count" 1
    next=$((next + sweep_count))
    probe floor-irq floor
    bench_prefix=()
    place "$all_cpus" "$all_cpus"
fi

# ---------------------------------------------------------------- the peer
# run_peer LABEL THREADS ALLOW_REFUSALS [totp_bench pamtester args]
run_peer() {
    local label=$1 t=$2 allow=$3 perf_log=$PHI_TMP/perf.$1 line
    shift 3
    line=$(perf_count "$perf_log" "$BENCH" pamtester --service totp-bench-oath --secrets "$SECRETS" --first 1 --count "$peer_count" \
        --threads "$t" --label "$label" "$@")
    ok_line "$line" "$allow" || phi_die "run $label went wrong: $line"
    labels+=("$label")
    RES[$label]=$line
    SYNCS[$label]=$(perf_syncs "$perf_log")
    PER_TX[$label]="-"
    phi_log "$line syncs=${SYNCS[$label]}"
}
if [ "$peer" = 1 ]; then
    phi_log "peer: pamtester + pam_oath, $peer_count verifications per run"
    USERSFILE=$DIR/users.oath
    "$BENCH" usersfile --secrets "$SECRETS" --first 1 --count "$peer_count" --out "$USERSFILE"
    chmod 0600 "$USERSFILE"
    phi_private_dir /etc/pam.d
    # Without an "other" stack libpam logs a complaint for every process,
    # work that would be timed for both peers.
    printf '%s required pam_deny.so\n' auth account password session >/etc/pam.d/other
    printf 'auth required pam_oath.so usersfile=%s window=1 digits=6\n' "$USERSFILE" \
        >/etc/pam.d/totp-bench-oath
    # pam_oath takes its lock with O_EXCL and refuses the login when another
    # process holds it, so concurrent logins with valid codes fail; serially
    # every valid code passes. Both are shown.
    run_peer pam_oath 1 0
    "$BENCH" usersfile --secrets "$SECRETS" --first 1 --count "$peer_count" --out "$USERSFILE"
    run_peer "pam_oath-c$threads" "$threads" 1
    run_peer pam_oath-wrong "$threads" 0 --wrong

    # pam_phi the same way: a pamtester process per login, pam_phi asking the
    # daemon on its PAM socket. The users are those of the phi and phi-connect
    # runs again: a code of a later step is above the watermark those runs
    # left, once the clock has moved past the step they started in.
    pam_phi_n=$((peer_count < count ? peer_count : count))
    printf 'auth required %s socket=%s\n' "$PHI_BUILD_DIR/pam_phi/pam_phi.so" "$PAM_SOCKET" \
        >/etc/pam.d/totp-bench-phi
    run_how=(pamtester --service totp-bench-phi)
    while [ "$(now_step)" -le "$phi_step" ]; do sleep 1; done
    run_phi pam_phi 1 "$pam_phi_n" 1
    while [ "$(now_step)" -le "$connect_step" ]; do sleep 1; done
    run_phi "pam_phi-c$threads" $((count + 1)) "$pam_phi_n" "$threads"
    run_how=(auth --socket "$PAM_SOCKET")
fi

# ---------------------------------------------------------------- table
f() { result_field "${RES[$1]}" "$2"; }
printf '\ntotp_bench: %s CPUs, load %s; fdatasync+fsync in the daemon (or pamtester and children)\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %7s %7s %8s %9s %8s %8s %8s %8s %8s %8s %10s\n' run clients n accepted verif/s p50_us p90_us \
    p99_us max_us syncs/s req/tx "vs peer"
for label in "${labels[@]}"; do
    peer_label=pam_oath
    [[ "$label" == *wrong ]] && peer_label=pam_oath-wrong
    ratio="-"
    if [ "$peer" = 1 ] && [[ "$label" == phi* || "$label" == pam_phi* ]]; then
        ratio=$(awk -v a="$(f "$label" per_s)" -v b="$(f "$peer_label" per_s)" 'BEGIN { printf "%.1fx", a / b }')
    fi
    printf '%-16s %7s %7s %8s %9s %8s %8s %8s %8s %8s %8s %10s\n' "$label" "$(f "$label" threads)" \
        "$(f "$label" n)" "$(f "$label" ok)" "$(f "$label" per_s)" "$(f "$label" p50_us)" "$(f "$label" p90_us)" \
        "$(f "$label" p99_us)" "$(f "$label" max_us)" \
        "$(awk -v s="${SYNCS[$label]}" -v w="$(f "$label" wall_s)" \
            'BEGIN { if (s == "-") print "-"; else printf "%.0f", s / w }')" \
        "${PER_TX[$label]}" "$ratio"
done
if [ -n "${RES[phi-c1]:-}" ]; then
    printf 'one client: phi p50 %s us; the server floor %s us before and %s us after it: phi adds %s us\n' \
        "$(f phi-c1 p50_us)" "$(f floor p50_us)" "$(f floor-after-c1 p50_us)" \
        "$(awk -v p="$(f phi-c1 p50_us)" -v a="$(f floor p50_us)" -v b="$(f floor-after-c1 p50_us)" \
            'BEGIN { printf "%.0f", p - (a + b) / 2 }')"
    printf '(of which a SQLite commit instead of a bare sync: %s us, floor-sqlite minus floor)\n' \
        "$(awk -v q="$(f floor-sqlite p50_us)" -v a="$(f floor p50_us)" 'BEGIN { printf "%.0f", q - a }')"
fi
if [ -n "${RES[phi-c1-irq]:-}" ]; then
    printf 'placed: client and verifier on CPU %s, which takes the disk'"'"'s interrupts, journald elsewhere:\n' \
        "$IRQ_CPU"
    printf '  phi p50 %s us, the floor so placed %s us: phi adds %s us\n' "$(f phi-c1-irq p50_us)" \
        "$(f floor-irq p50_us)" \
        "$(awk -v p="$(f phi-c1-irq p50_us)" -v a="$(f floor-irq p50_us)" 'BEGIN { printf "%.0f", p - a }')"
fi
printf '(fdatasync: pwrite of one 4 KiB page + fdatasync in the store'"'"'s directory; floor: a server process\n'
printf ' that only reads a request, syncs that page and replies, over a Unix socket: the floor under any\n'
printf ' durable answer; floor-rtt: the same server without the sync; floor-sqlite: with a one-row SQLite\n'
printf ' transaction (WAL, synchronous=FULL) instead of the sync; phi*: totp_bench'"'"'s own client on the PAM\n'
printf ' socket; pam_phi*: pamtester processes with pam_phi, as pam_oath is run; vs peer: verifications/s\n'
printf ' against pam_oath: valid codes against the serial run (the only one in which pam_oath accepts every\n'
printf ' valid code), wrong codes against pam_oath-wrong; req/tx: requests per durable transaction from\n'
printf ' phictl status; enrolment of %s users\n' "$users"
printf ' through the protocol: %s users/s, p50 %s us per user (issue + enrol + activate))\n' \
    "$(result_field "$enroll" per_s)" "$(result_field "$enroll" p50_us)"
phi_pass "benchmark ran"
