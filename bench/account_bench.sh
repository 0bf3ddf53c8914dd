#!/usr/bin/env bash
# account_bench: PAM account decisions per second through pam_phi, beside a
# bare `account required pam_permit.so` stack measured in the same run by the
# same driver (the floor: what libpam and the driver cost by themselves).
#
# In private namespaces (tests/lib/harness.bash): a journald, a slapd holding
# USERS users in GROUPS groups (tests/lib/gen-ldif: userNNNNN, 250 members a
# group, so each user is in 5 groups besides the primary one), and
# phiaccessd with an access policy of RULES rules over those names
# (`account_bench gen`, shaped as policy_bench's: one deny rule in seven, each
# naming 10 users, 2 groups, two services, two host patterns). The host is
# db01 (the test's own UTS namespace). With --local the same users and groups
# are local accounts instead (the daemon's passwd_file and group_file) and no
# slapd runs: the daemon then reads those files for every decision.
#
# Every decision is one `account required pam_phi.so` in the PAM service
# sshd: pam_phi connects to the daemon's PAM socket, sends ACCOUNT; the
# daemon's verifier looks the user and their groups up, asks the policy
# (phi_access_decide, as `phictl policy check` does), answers, and journals
# access_granted or access_denied. The questions are QUESTIONS users spread
# over the population; each one's expected answer is asked of `phictl policy
# check` first, and every decision of the run is compared with it (a wrong
# answer or any result other than PAM_SUCCESS / PAM_PERM_DENIED stops the
# run). Two drivers, each against the floor, at each client count of
# --procs:
#   inproc     account_bench run: P processes each looping pam_start /
#              pam_acct_mgmt / pam_end, as login programs do once per login;
#   pamtester  one `pamtester -v SERVICE USER acct_mgmt` process per
#              decision, P at a time: mostly fork/exec and libpam start-up.
# Each pair (floor, then phi) runs --repeat times, alternating, and the table
# shows each side's best run: decisions/s of both, p50/p99 latency, and phi's
# added cost per decision, 1/phi - 1/floor (µs); the daemon's requests per
# round (a round is one store transaction) from `phictl status`; the CPU time
# phiaccessd and journald spent per decision (/proc/PID/stat, until both are
# idle again). Then policy_bench for the library alone. Asserts nothing.
#
# Usage: bench/account_bench.sh [--count N] [--pamtester-count N] [--procs "P..."]
#          [--repeat R] [--rules N] [--users N] [--groups N] [--questions N] [--local]
#        defaults 5000, 1000, "1 4 16", 3, 1000, 10000, 200, 512. Needs root
#        (namespaces); build dir $PHI_BUILD_DIR (default build/).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/harness.bash
source "$(dirname "$0")/../tests/lib/harness.bash"
phi_harness_init "$@"

count=5000 pt_count=1000 procs="1 4 16" repeat=3 rules=1000 users=10000 groups=200 questions=512 local=0
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --pamtester-count) pt_count=$2; shift 2 ;;
        --procs) procs=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --rules) rules=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --groups) groups=$2; shift 2 ;;
        --questions) questions=$2; shift 2 ;;
        --local) local=1; shift ;;
        *) phi_die "usage: account_bench.sh [--count N] [--pamtester-count N] [--procs 'P...'] [--repeat R]" \
               "[--rules N] [--users N] [--groups N] [--questions N] [--local]" ;;
    esac
done
read -r -a procs_list <<<"$procs"
PAMTESTER=$(command -v pamtester) || phi_skip "pamtester is not installed"

BENCH=$PHI_BUILD_DIR/bench/account_bench
CTL=$PHI_BUILD_DIR/phiaccessd/phictl
PAM_PHI=$(realpath -m "$PHI_BUILD_DIR/pam_phi/pam_phi.so")   # PAM wants an absolute path
DIR=$PHI_TMP/phi
SOCKET=$DIR/run/socket
PAM_SOCKET=$DIR/run/pam
HOST=db01
suffix=dc=example,dc=org
for f in "$BENCH" "$CTL" "$PAM_PHI" "$PHI_BUILD_DIR/bench/policy_bench"; do
    [ -e "$f" ] || phi_die "$f is missing: build the tree first"
done
mkdir -p "$DIR/run"
# The policy's host: this namespace's own name.
hostname "$HOST"

# shellcheck disable=SC2119 # no options: the default journald
phi_journald_start
"$BENCH" gen --dir "$DIR" --rules "$rules" --users "$users" --groups "$groups" --per-group 250
chmod 0644 "$DIR/policy.conf"
if [ "$local" = 1 ]; then
    source_text="$users local users (passwd_file) in $groups local groups (group_file)"
    passwd_file=$DIR/passwd
    group_file=$DIR/group
    ldap_uri=ldap://127.0.0.1:3999   # nothing listens: no directory
else
    source_text="$users directory users (slapd, synced into the store) in $groups groups"
    phi_gen_ldif --suffix "$suffix" --users "$users" --groups "$groups" --members-per-group 250 \
        >"$PHI_TMP/users.ldif"
    PHI_SLAPD_TIMEOUT=120 phi_slapd_start "$suffix" "$PHI_TMP/users.ldif"
    ldap_uri=$PHI_LDAP_URI
    printf 'root:x:0:0:root:/root:/bin/bash\n' >"$DIR/local.passwd"
    printf 'root:x:0:\nphi-admins:x:3000:\n' >"$DIR/local.group"
    passwd_file=$DIR/local.passwd
    group_file=$DIR/local.group
fi
cat >"$DIR/phiaccessd.conf" <<CONF
[ldap]
uri = $ldap_uri
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
passwd_file = $passwd_file
group_file = $group_file
policy = $DIR/policy.conf

[totp]
master_key = $DIR/master.key
create_master_key = yes
issuer = phi bench
CONF
chmod 0600 "$DIR/phiaccessd.conf"

ctl() { "$CTL" --socket "$SOCKET" "$@"; }
status_get() { ctl --json status | jq -r --arg k "$1" '.[$k]'; }
status_is() { [ "$(status_get "$1")" = "$2" ]; }

phi_spawn phiaccessd "$PHI_BUILD_DIR/phiaccessd/phiaccessd" --foreground --config "$DIR/phiaccessd.conf"
DAEMON_PID=$PHI_LAST_PID
phi_wait_for --timeout 15 --what "phiaccessd socket" test -S "$SOCKET" || phi_die "phiaccessd did not start"
phi_wait_for --timeout 15 --what "phiaccessd PAM socket" test -S "$PAM_SOCKET" || phi_die "no PAM socket"
if [ "$local" = 0 ]; then
    phi_wait_for --timeout 300 --interval 0.2 --what "$users users synced" status_is users "$users" ||
        phi_die "the daemon did not load $users users"
fi
[ "$(status_get policy_rules)" = "$rules" ] ||
    phi_die "the daemon holds $(status_get policy_rules) rules, not $rules: $(status_get policy)"
phi_log "policy: $(status_get policy)"

# The questions: users spread over the population (a fixed stride), each
# with the answer phictl policy check gives for sshd on this host.
phi_log "asking phictl policy check about $questions users"
: >"$DIR/questions"
stride=$(( users / questions > 0 ? users / questions : 1 ))
for ((q = 0; q < questions; q++)); do
    name=$(printf 'user%05d' $(( (q * stride + q * 7919) % users + 1 )))
    rc=0
    ctl policy check "$name" --service sshd >/dev/null || rc=$?
    case "$rc" in
        0) echo "$name 1" ;;
        1) echo "$name 0" ;;
        *) phi_die "phictl policy check $name: exit $rc" ;;
    esac
done >"$DIR/questions"
allowed_q=$(grep -c ' 1$' "$DIR/questions" || true)
phi_log "$allowed_q of $questions questions are allowed by the policy"

# The stacks: pam_phi alone in account (so the figure is pam_phi's), and the
# floor. Without an "other" stack libpam logs a complaint per process.
phi_private_dir /etc/pam.d
printf '%s required pam_deny.so\n' auth account password session >/etc/pam.d/other
printf 'account required %s socket=%s\n' "$PAM_PHI" "$PAM_SOCKET" >/etc/pam.d/sshd
printf 'account required pam_permit.so\n' >/etc/pam.d/bench-permit

result_field() { # LINE KEY
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# cpu_ticks PID: user + system CPU time of the process (all its threads) so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
JOURNALD_PID=$(pgrep -x systemd-journal)   # this PID namespace's only one: the test's
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
# settle: until neither the daemon nor journald used any CPU for half a
# second (at most 2 minutes): the journal entries of the run before are
# written, so that each run starts quiet and is charged its own entries.
settle() {
    local before after i
    for ((i = 0; i < 240; i++)); do
        before="$(cpu_ticks "$DAEMON_PID") $(cpu_ticks "$JOURNALD_PID")"
        sleep 0.5
        after="$(cpu_ticks "$DAEMON_PID") $(cpu_ticks "$JOURNALD_PID")"
        [ "$before" != "$after" ] || return 0
    done
    phi_log "the daemon and journald are still busy after 2 minutes"
}
declare -A RES=() PER_ROUND=() DAEMON_CPU=() JOURNALD_CPU=()
# one LABEL SERVICE COUNT PROCS [account_bench args]
one() {
    local label=$1 service=$2 n=$3 p=$4 line req0 rounds0 d0 j0
    shift 4
    settle
    req0=$(status_get totp_requests)
    rounds0=$(status_get totp_rounds)
    d0=$(cpu_ticks "$DAEMON_PID")
    j0=$(cpu_ticks "$JOURNALD_PID")
    line=$("$BENCH" run --service "$service" --users "$DIR/questions" --count "$n" --procs "$p" \
        --label "$label" "$@")
    # The daemon's journal thread and journald finish after the last answer.
    settle
    DAEMON_CPU[$label]=$(( ($(cpu_ticks "$DAEMON_PID") - d0) * TICK_US / n ))
    JOURNALD_CPU[$label]=$(( ($(cpu_ticks "$JOURNALD_PID") - j0) * TICK_US / n ))
    if [ "$(result_field "$line" errors)" != 0 ] || [ "$(result_field "$line" wrong)" != 0 ]; then
        phi_die "run $label went wrong: $line"
    fi
    RES[$label]=$line
    PER_ROUND[$label]="-"
    if [ "$service" = sshd ]; then
        local req rounds
        req=$(( $(status_get totp_requests) - req0 ))
        rounds=$(( $(status_get totp_rounds) - rounds0 ))
        [ "$req" = "$n" ] || phi_die "run $label: the daemon served $req requests, not $n"
        PER_ROUND[$label]=$(awk -v r="$req" -v n="$rounds" 'BEGIN { printf "%.1f", n ? r / n : 0 }')
    fi
    phi_log "$line req/round=${PER_ROUND[$label]} daemon_cpu_us=${DAEMON_CPU[$label]} journald_cpu_us=${JOURNALD_CPU[$label]}"
}

# Each pair (floor, phi) runs --repeat times, alternating, so that a burst of
# other work on the machine falls on both; the table shows each side's best.
cursor=$(phi_journal_cursor)
pairs=()
for p in "${procs_list[@]}"; do
    pairs+=("inproc-c$p")
done
for p in "${procs_list[@]}"; do
    pairs+=("pamtester-c$p")
done
for ((r = 1; r <= repeat; r++)); do
    for p in "${procs_list[@]}"; do
        one "floor-inproc-c$p-r$r" bench-permit "$count" "$p" --permit
        one "phi-inproc-c$p-r$r" sshd "$count" "$p"
    done
    for p in "${procs_list[@]}"; do
        one "floor-pamtester-c$p-r$r" bench-permit "$pt_count" "$p" --pamtester "$PAMTESTER" --permit
        one "phi-pamtester-c$p-r$r" sshd "$pt_count" "$p" --pamtester "$PAMTESTER"
    done
done
# Every decision is on record (journald may still be writing the last ones).
total=$(( repeat * ${#procs_list[@]} * (count + pt_count) ))
journaled() {
    [ "$(phi_journal_json --after "$cursor" SYSLOG_IDENTIFIER=phiaccessd PHI_SERVICE=sshd |
        jq -r 'select(.PHI_EVENT == "access_granted" or .PHI_EVENT == "access_denied") | .PHI_EVENT' |
        wc -l)" = "$total" ]
}
phi_wait_for --timeout 120 --interval 1 --what "$total decisions journaled" journaled ||
    phi_die "the journal does not hold the $total decisions"

policy_line=$("$PHI_BUILD_DIR/bench/policy_bench" --rules "$rules" --users "$users" --groups "$groups" --seconds 1)

# ---------------------------------------------------------------- table
f() { result_field "${RES[$1]}" "$2"; }
best() { # SIDE-PAIR: the label of the repeat with the most decisions/s
    local r b="" bv=-1 v
    for ((r = 1; r <= repeat; r++)); do
        v=$(f "$1-r$r" per_s)
        if [ "$v" -gt "$bv" ]; then
            bv=$v
            b=$1-r$r
        fi
    done
    echo "$b"
}
printf '\naccount_bench: %s CPUs, load %s; %s rules over %s; host %s, service sshd\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$rules" "$source_text" "$HOST"
printf '%s questions (%s allowed), every answer checked against phictl policy check; %s decisions journaled\n' \
    "$questions" "$allowed_q" "$total"
printf '%-14s %6s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' driver n floor/s phi/s floor_p50 phi_p50 \
    phi_p99 phi_max added_us p50_diff req/round daemon_us jrnld_us
for pair in "${pairs[@]}"; do
    fl=$(best "floor-$pair")
    ph=$(best "phi-$pair")
    printf '%-14s %6s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' "$pair" "$(f "$ph" n)" "$(f "$fl" per_s)" \
        "$(f "$ph" per_s)" "$(f "$fl" p50_us)" "$(f "$ph" p50_us)" "$(f "$ph" p99_us)" "$(f "$ph" max_us)" \
        "$(awk -v a="$(f "$ph" per_s)" -v b="$(f "$fl" per_s)" 'BEGIN { printf "%.1f", 1e6 / a - 1e6 / b }')" \
        "$(( $(f "$ph" p50_us) - $(f "$fl" p50_us) ))" "${PER_ROUND[$ph]}" "${DAEMON_CPU[$ph]}" "${JOURNALD_CPU[$ph]}"
done
printf '(best of %s alternating runs of each side; decisions/s over the wall time of N decisions from\n' "$repeat"
printf ' c clients; latencies (us per decision) and CPU figures of that best run;\n'
printf ' added_us: 1e6/phi - 1e6/floor, what pam_phi and the daemon add per decision at that concurrency;\n'
printf ' p50_diff: phi_p50 - floor_p50, the same for one client, steadier on a busy machine;\n'
printf ' req/round: the daemon'"'"'s requests per verifier round, from phictl status; daemon_us, jrnld_us:\n'
printf ' CPU time (user + system) of phiaccessd and of journald per decision during the run, from\n'
printf ' /proc/PID/stat, from the start of the run until both are idle again (its journal entries\n'
printf ' written), counted in clock ticks of %s us over the whole run)\n' "$TICK_US"
printf '\npolicy_bench, same policy shape, the library alone:\n%s\n' "$policy_line"
phi_pass "benchmark ran"
