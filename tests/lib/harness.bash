# shellcheck shell=bash
# tests/lib/harness.bash: the harness every phi integration test is built on.
#
# A test script looks like this:
#
#     #!/usr/bin/env bash
#     set -euo pipefail
#     source "$(dirname "$0")/../lib/harness.bash"
#     # optional: phi_outer_before() { ...; }  phi_outer_after() { ...; }
#     phi_harness_init "$@"
#     # From here on we are PID 1 of private pid/mount/net/uts/ipc namespaces.
#     phi_slapd_start dc=example,dc=org "$ldif"
#     phi_assert_eq "$(...)" "expected" "what is being checked"
#
# Isolation model
#   phi_harness_init re-runs the script under `unshare --pid --fork --mount-proc
#   --mount --net --uts --ipc --propagation private`. So each test has
#     - its own loopback: fixed ports (slapd on 3890, ...) never clash between
#       tests run in parallel by `ctest -j`;
#     - its own pid namespace: when the test's PID 1 exits, even by kill -9, the
#       kernel kills every process the test started;
#     - its own mount namespace: bind mounts, tmpfs and overlays over /run, /dev
#       or /etc are invisible to the host and to other tests. Files are never
#       written into the host's /etc, /run or /dev; writes go to $PHI_TMP or to
#       private mounts.
#   The part of the script before phi_harness_init runs twice (outer and inner),
#   so keep it to definitions. Optional hooks, defined before phi_harness_init,
#   run in the outer (host) context: phi_outer_before (before the namespaces
#   exist) and phi_outer_after RC (after the inner run has ended and every
#   process in it is gone). The outer part also checks by itself that no process
#   of the test's pid namespace survived, removes the run directory, and prints
#   the last line of the output: "harness: N checks passed" or "harness: FAILED".
#
# Exit status: 0 pass, 77 skipped (phi_skip; ctest SKIP_RETURN_CODE 77), other
# values fail. On failure the tails of the logs of processes started with
# phi_spawn (slapd, journald, ...) and of the test's journal are printed. Set
# PHI_KEEP_TMP=1 to keep $PHI_RUN_DIR for post-mortem reading.
# SIGTERM/SIGINT/SIGHUP to the test are passed to every process in its
# namespace so clean-up runs at once; if it hangs, SIGKILL follows
# (PHI_STOP_GRACE + 5 s). kill -9 of the test (outer bash or inner PID 1)
# takes the whole namespace down at once; nothing is left running, but the
# temp dir ${TMPDIR:-/tmp}/phi-test.* stays behind when the outer bash was the one
# killed (nobody is left to remove it).
#
# Functions (details above each definition):
#   phi_harness_init "$@"       enter the namespaces, set $PHI_TMP and the traps
#   phi_log MSG...              timestamped progress line on stderr
#   phi_die MSG...              error in the test's own machinery: exit 1
#   phi_skip MSG...             environment lacks something: exit 77
#   phi_fail MSG...             a check failed: exit 1
#   phi_pass WHAT               count a check that the caller decided passed
#   phi_assert_eq ACTUAL EXPECTED [WHAT]
#   phi_assert_ne ACTUAL UNEXPECTED [WHAT]
#   phi_assert_contains HAYSTACK NEEDLE [WHAT]
#   phi_assert_not_contains HAYSTACK NEEDLE [WHAT]
#   phi_assert_match STRING ERE [WHAT]
#   phi_check WHAT CMD...       passes when CMD exits 0 (its output is shown if not)
#   phi_check_fails WHAT CMD... passes when CMD exits non-zero
#   phi_wait_for [--timeout S] [--interval S] [--what TEXT] [--] CMD...
#   phi_on_exit CMD...          run CMD at exit, before processes are stopped
#   phi_spawn NAME CMD...       background process, log $PHI_TMP/NAME.log, pid in PHI_LAST_PID
#   phi_stop_pid [--kill] PID   stop one process (TERM, then KILL after a grace)
#   phi_private_dir PATH        make PATH an empty directory only this test sees
#   phi_ns_run [--bind SRC:DEST]... -- CMD...   CMD in a further mount namespace
#   phi_gen_ldif ARGS...        tests/lib/gen-ldif
#   phi_slapd_start [--name N] [--port P] [--rootpw PW] SUFFIX [LDIF]
#   phi_slapd_stop [--kill] [NAME]
#   phi_slapd_restart [--kill] [NAME]
#   phi_ldapsearch ARGS...      anonymous ldapsearch against the last started slapd
#   phi_ldapmodify ARGS...      ldapmodify as its rootdn (LDIF on stdin)
#   phi_journald_start [--no-devlog]   private systemd-journald
#   phi_journald_stop
#   phi_journal_cursor          cursor of the newest journal entry
#   phi_journal_json [--after CURSOR] [JOURNALCTL ARGS/MATCHES...]
#   phi_journal_wait [--timeout S] [--after CURSOR] MATCHES...
#   phi_json_field FIELD        value of FIELD from each JSON line on stdin
#   phi_outer_leftovers         (outer hooks) processes still in the test's pid namespace
#   phi_pids_in_pidns NS        processes on the host in pid namespace NS
#
# Assertions and phi_pass count only in the shell that runs them: call them in
# the script's main shell, not in ( subshells ), $( ) or pipelines.

if [ -n "${_PHI_HARNESS_SOURCED:-}" ]; then
    return 0
fi
_PHI_HARNESS_SOURCED=1

set -euo pipefail
# errtrace: the ERR trap also fires inside functions, so an unexpected failure
# is reported with the command and line that failed.
set -E

PHI_LIB_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
: "${PHI_SOURCE_DIR:=$(cd -- "$PHI_LIB_DIR/../.." && pwd -P)}"
: "${PHI_BUILD_DIR:=$PHI_SOURCE_DIR/build}"
PHI_GEN_LDIF=$PHI_LIB_DIR/gen-ldif
export PHI_SOURCE_DIR PHI_BUILD_DIR PHI_LIB_DIR PHI_GEN_LDIF

: "${PHI_JOURNALD_BIN:=/lib/systemd/systemd-journald}"
: "${PHI_SLAPD_PORT:=3890}"
# `-d none` keeps slapd in the foreground and still prints fatal errors;
# `-d 0` also stays in the foreground but exits silently on a bad config.
: "${PHI_SLAPD_DEBUG:=none}"
: "${PHI_STOP_GRACE:=3}"

# Harness messages go to a copy of the original stderr, so they stay visible
# when the test redirects or captures the output of a command that fails.
exec {_PHI_MSG_FD}>&2

_PHI_CHECKS=0
_PHI_FAILED=""
_PHI_ERR_MSG=""
_PHI_NOW_US=0
_PHI_US=0
declare -ga _PHI_PIDS=() _PHI_ON_EXIT=() _PHI_LOG_FILES=()
declare -gA _PHI_PID_NAME=() _PHI_OVERLAID=()
declare -gA _PHI_SLAPD_DIR=() _PHI_SLAPD_PORT=() _PHI_SLAPD_SUFFIX=() _PHI_SLAPD_PID=()

_phi_now() {
    # EPOCHREALTIME's decimal separator follows the locale; keep digits only.
    _PHI_NOW_US=${EPOCHREALTIME//[!0-9]/}
}
_phi_now
: "${_PHI_T0:=$_PHI_NOW_US}"

# _phi_to_us SECONDS: "2", "0.25" -> _PHI_US in microseconds (no fork, no bc).
_phi_to_us() {
    local s=$1 int frac
    [[ "$s" =~ ^[0-9]*(\.[0-9]*)?$ && "$s" != "" && "$s" != "." ]] ||
        phi_die "not a number of seconds: '$s'"
    int=${s%%.*}
    frac=""
    [[ "$s" != *.* ]] || frac=${s#*.}
    frac=${frac}000000
    frac=${frac:0:6}
    _PHI_US=$(( 10#${int:-0} * 1000000 + 10#$frac ))
}

_phi_msg() {
    printf '%s\n' "$@" >&"$_PHI_MSG_FD"
}

# _phi_where: "file:line" of the test code that called into the harness.
_phi_where() {
    local i
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        if [ "${BASH_SOURCE[i]}" != "${BASH_SOURCE[0]}" ]; then
            printf '%s:%s' "${BASH_SOURCE[i]}" "${BASH_LINENO[i - 1]}"
            return
        fi
    done
    printf 'harness'
}

# _phi_show VALUE: quoted and cut to a readable length for failure messages.
_phi_show() {
    local v=$1
    if [ "${#v}" -gt 2000 ]; then
        v="${v:0:2000}... (${#v} bytes in all)"
    fi
    if [[ "$v" == *$'\n'* ]]; then
        printf '<<EOF\n%s\nEOF' "$v"
    else
        printf "'%s'" "$v"
    fi
}

phi_log() {
    local ms
    _phi_now
    ms=$(( (_PHI_NOW_US - _PHI_T0) / 1000 ))
    printf '[phi %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&"$_PHI_MSG_FD"
}

phi_die() {
    _PHI_FAILED=1
    _phi_msg "harness: ERROR: $* (at $(_phi_where))"
    exit 1
}

phi_skip() {
    _phi_msg "harness: SKIP: $*"
    exit 77
}

phi_fail() {
    _PHI_FAILED=1
    _phi_msg "harness: FAIL: $1 (at $(_phi_where))"
    shift
    [ $# -eq 0 ] || _phi_msg "$@"
    exit 1
}

phi_pass() {
    _PHI_CHECKS=$((_PHI_CHECKS + 1))
    phi_log "ok $_PHI_CHECKS - $*"
}

phi_assert_eq() {
    local actual=$1 expected=$2 what=${3:-values are equal}
    if [ "$actual" == "$expected" ]; then
        phi_pass "$what"
    else
        phi_fail "$what" "  expected: $(_phi_show "$expected")" "  actual:   $(_phi_show "$actual")"
    fi
}

phi_assert_ne() {
    local actual=$1 unexpected=$2 what=${3:-values differ}
    if [ "$actual" != "$unexpected" ]; then
        phi_pass "$what"
    else
        phi_fail "$what" "  both are: $(_phi_show "$actual")"
    fi
}

phi_assert_contains() {
    local haystack=$1 needle=$2 what=${3:-text contains $(_phi_show "$2")}
    if [[ "$haystack" == *"$needle"* ]]; then
        phi_pass "$what"
    else
        phi_fail "$what" "  missing:  $(_phi_show "$needle")" "  in:       $(_phi_show "$haystack")"
    fi
}

phi_assert_not_contains() {
    local haystack=$1 needle=$2 what=${3:-text lacks $(_phi_show "$2")}
    if [[ "$haystack" != *"$needle"* ]]; then
        phi_pass "$what"
    else
        phi_fail "$what" "  unwanted: $(_phi_show "$needle")" "  in:       $(_phi_show "$haystack")"
    fi
}

phi_assert_match() {
    local string=$1 regex=$2 what=${3:-text matches /$2/}
    if [[ "$string" =~ $regex ]]; then
        phi_pass "$what"
    else
        phi_fail "$what" "  regex:    /$regex/" "  text:     $(_phi_show "$string")"
    fi
}

# phi_check WHAT CMD...: CMD runs in the main shell with its output captured;
# the output is shown only when the check fails.
phi_check() {
    local what=$1 out rc=0
    shift
    out=$(mktemp "${PHI_TMP:-${TMPDIR:-/tmp}}/phi-check.XXXXXX")
    "$@" >"$out" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        rm -f "$out"
        phi_pass "$what"
    else
        local text
        text=$(cat "$out")
        rm -f "$out"
        phi_fail "$what" "  command:  $(printf '%q ' "$@")" "  status:   $rc" "  output:   $(_phi_show "$text")"
    fi
}

phi_check_fails() {
    local what=$1 out rc=0
    shift
    out=$(mktemp "${PHI_TMP:-${TMPDIR:-/tmp}}/phi-check.XXXXXX")
    "$@" >"$out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        rm -f "$out"
        phi_pass "$what"
    else
        local text
        text=$(cat "$out")
        rm -f "$out"
        phi_fail "$what" "  command succeeded but should not have: $(printf '%q ' "$@")" "  output:   $(_phi_show "$text")"
    fi
}

# phi_wait_for [--timeout S] [--interval S] [--what TEXT] [--] CMD...
# Polls CMD (output discarded) until it exits 0: returns 0 then, or logs and
# returns 1 when the timeout (default 10 s) has passed. Fractions are fine.
phi_wait_for() {
    local timeout=10 interval=0.05 what="" deadline
    while [ $# -gt 0 ]; do
        case "$1" in
            --timeout) timeout=$2; shift 2 ;;
            --interval) interval=$2; shift 2 ;;
            --what) what=$2; shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    [ $# -gt 0 ] || phi_die "phi_wait_for: no command"
    _phi_to_us "$timeout"
    _phi_now
    deadline=$((_PHI_NOW_US + _PHI_US))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        _phi_now
        if [ "$_PHI_NOW_US" -ge "$deadline" ]; then
            phi_log "timed out after ${timeout}s waiting for: ${what:-$(printf '%q ' "$@")}"
            return 1
        fi
        sleep "$interval"
    done
}

# phi_on_exit CMD...: registered commands run (last first) when the test ends,
# on every exit path except SIGKILL, before the harness stops processes.
phi_on_exit() {
    local q
    q=$(printf '%q ' "$@")
    _PHI_ON_EXIT+=("$q")
}

# _phi_alive PID: running (a zombie counts as gone).
_phi_alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# phi_spawn NAME CMD...: starts CMD in the background with stdin from /dev/null
# and stdout+stderr appended to $PHI_TMP/NAME.log. The pid is left in
# PHI_LAST_PID (not printed, because $( ) would make it a grandchild that the
# test cannot wait for). The harness stops it at exit and shows the tail of
# its log if the test fails.
phi_spawn() {
    local name=$1 log
    shift
    [ -n "${PHI_TMP:-}" ] || phi_die "phi_spawn needs phi_harness_init first"
    log=$PHI_TMP/$name.log
    "$@" </dev/null >>"$log" 2>&1 {_PHI_MSG_FD}>&- &
    PHI_LAST_PID=$!
    _PHI_PIDS+=("$PHI_LAST_PID")
    _PHI_PID_NAME[$PHI_LAST_PID]=$name
    _PHI_LOG_FILES+=("$log")
}

# phi_stop_pid [--kill] PID: TERM (or KILL), wait up to PHI_STOP_GRACE s, then
# KILL; reaps the process when it is our child.
phi_stop_pid() {
    local sig=TERM pid deadline
    if [ "${1:-}" = --kill ]; then
        sig=KILL
        shift
    fi
    pid=$1
    _phi_to_us "$PHI_STOP_GRACE"
    _phi_now
    deadline=$((_PHI_NOW_US + _PHI_US))
    # stderr off for the whole loop: bash prints "NNN Killed ..." for a
    # SIGKILLed job at the next command boundary after reaping it. Harness
    # messages use their own fd and still show.
    {
        kill -s "$sig" "$pid" || true
        while _phi_alive "$pid"; do
            _phi_now
            if [ "$_PHI_NOW_US" -ge "$deadline" ]; then
                phi_log "pid $pid (${_PHI_PID_NAME[$pid]:-?}) ignored SIG$sig for ${PHI_STOP_GRACE}s; killing it"
                kill -s KILL "$pid" || true
                deadline=$((_PHI_NOW_US + 5000000))
                sig=KILL
            fi
            sleep 0.02
        done
        wait "$pid" || true
    } 2>/dev/null
    local i
    for i in "${!_PHI_PIDS[@]}"; do
        [ "${_PHI_PIDS[i]}" != "$pid" ] || unset '_PHI_PIDS[i]'
    done
}

# ---------------------------------------------------------------------------
# Namespaces, start-up and clean-up

phi_harness_init() {
    if [ -n "${_PHI_INNER:-}" ]; then
        _phi_inner_init
        return 0
    fi
    _phi_outer_run "$@"
    exit "$?"
}

_phi_outer_run() {
    trap '_phi_on_err "$?" "$BASH_COMMAND" "${BASH_SOURCE[0]:-?}" "$LINENO"' ERR
    trap '_phi_outer_exit' EXIT
    [ "$(id -u)" = 0 ] || phi_skip "needs root (it creates pid, mount and network namespaces)"
    command -v unshare >/dev/null || phi_skip "unshare (util-linux) is not installed"
    command -v ip >/dev/null || phi_skip "ip (iproute2) is not installed"

    PHI_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/phi-test.XXXXXXXX")
    export PHI_RUN_DIR

    if declare -F phi_outer_before >/dev/null; then
        phi_outer_before
    fi

    local script
    local -a deathsig=()
    script=$(readlink -f -- "$0")
    # A chain of kills so that the test never outlives whoever runs it:
    # this shell dies -> (pdeathsig) unshare dies -> (--kill-child) PID 1
    # dies -> (pid namespace) everything else dies.
    if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
        deathsig=(setpriv --pdeathsig KILL --)
    fi
    _PHI_INNER=$PHI_RUN_DIR _PHI_T0=$_PHI_T0 \
        "${deathsig[@]}" unshare --pid --fork --kill-child --mount-proc --mount --net --uts --ipc \
        --propagation private -- bash "$script" "$@" {_PHI_MSG_FD}>&- &
    _PHI_UNSHARE_PID=$!
    _phi_hold_pidns
    # A background job plus `wait` (rather than a foreground command) lets the
    # TERM trap below run while the test is still going.
    trap '_phi_outer_forward TERM' TERM
    trap '_phi_outer_forward HUP' HUP
    # Background jobs of a non-interactive shell ignore SIGINT, so Ctrl-C has
    # to be passed on by hand.
    trap '_phi_outer_forward TERM' INT
    local rc
    while :; do
        rc=0
        wait "$_PHI_UNSHARE_PID" || rc=$?
        kill -0 "$_PHI_UNSHARE_PID" 2>/dev/null || break
    done
    trap - TERM HUP INT
    if [ -n "${_PHI_WATCHDOG:-}" ]; then
        kill "$_PHI_WATCHDOG" 2>/dev/null || true
    fi
    # Outer checks continue the inner part's numbering.
    _PHI_CHECKS=$(cat "$PHI_RUN_DIR/inner-checks" 2>/dev/null || echo 0)

    local leftovers
    leftovers=$(phi_outer_leftovers)
    if [ -n "$leftovers" ]; then
        _phi_msg "harness: FAIL: processes of the test outlived it:" "$leftovers"
        # shellcheck disable=SC2046 # one pid per word
        kill -KILL $(printf '%s\n' "$leftovers" | awk '{print $1}') 2>/dev/null || true
        [ "$rc" != 0 ] || rc=1
    fi

    if declare -F phi_outer_after >/dev/null; then
        phi_outer_after "$rc"
    fi
    return "$rc"
}

_phi_outer_forward() {
    local sig=$1 pid1 pid
    [ -z "${_PHI_WATCHDOG:-}" ] || return 0
    # The inner PID 1 is unshare's only child; its trap exits, and its EXIT
    # trap stops everything in order.
    pid1=$(pgrep -P "$_PHI_UNSHARE_PID" 2>/dev/null | head -n 1 || true)
    [ -z "$pid1" ] || kill -s "$sig" "$pid1" 2>/dev/null || true
    # bash runs a trap only once its foreground command has ended, so that
    # command (and everything else in the namespace) gets the signal too.
    for pid in $(phi_outer_leftovers | awk '{print $1}'); do
        [ "$pid" = "$pid1" ] || kill -s "$sig" "$pid" 2>/dev/null || true
    done
    # Last resort if the clean-up hangs: SIGKILL to unshare, whose
    # --kill-child takes PID 1, and with it the whole namespace, down.
    (sleep $((PHI_STOP_GRACE + 5)) && kill -KILL "$_PHI_UNSHARE_PID") \
        </dev/null >/dev/null 2>&1 {_PHI_MSG_FD}>&- &
    _PHI_WATCHDOG=$!
}

# Keeps the test's pid namespace referenced (an open fd on its ns file) until
# this shell exits. The kernel reuses the inode number of a freed namespace, so
# without this a test started meanwhile could get the same number, and its
# processes would look like leftovers of this one.
_phi_hold_pidns() {
    local child="" i
    for ((i = 0; i < 200; i++)); do
        child=$(cat "/proc/$_PHI_UNSHARE_PID/task/$_PHI_UNSHARE_PID/children" 2>/dev/null || true)
        [ -z "$child" ] || break
        kill -0 "$_PHI_UNSHARE_PID" 2>/dev/null || return 0
        sleep 0.005
    done
    child=${child%% *}
    [ -n "$child" ] || return 0
    # The child may already be gone; then there is nothing left to mistake.
    exec {_PHI_PIDNS_FD}<"/proc/$child/ns/pid" 2>/dev/null || true
}

# phi_outer_leftovers: for outer hooks; prints "PID ARGS" for every process
# still in the test's pid namespace (the inner part records its identity).
phi_outer_leftovers() {
    local ns
    [ -r "${PHI_RUN_DIR:-}/pidns" ] || return 0
    ns=$(cat "$PHI_RUN_DIR/pidns")
    phi_pids_in_pidns "$ns"
}

# phi_pids_in_pidns NS: NS as readlink shows it ("pid:[4026532512]"); prints
# "PID ARGS" for each process on this host in that pid namespace.
phi_pids_in_pidns() {
    local pattern=$1 pid
    # -lname takes a glob, in which [ ] are special.
    pattern=${pattern//\[/\\[}
    pattern=${pattern//\]/\\]}
    # find complains (and fails) about processes that exit while it looks.
    { find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/pid' -lname "$pattern" 2>/dev/null || true; } |
        while IFS=/ read -r _ _ pid _; do
            printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        done
}

_phi_outer_exit() {
    local rc=$?
    # A subshell forked just before a signal arrives can still run the
    # parent's traps; clean-up belongs to the main shell only.
    [ "$BASHPID" = "$$" ] || return "$rc"
    set +e
    trap - ERR
    if [ -n "${PHI_RUN_DIR:-}" ] && [ -d "$PHI_RUN_DIR" ]; then
        if [ -n "${PHI_KEEP_TMP:-}" ]; then
            _phi_msg "harness: kept $PHI_RUN_DIR (PHI_KEEP_TMP is set)"
        else
            # Safe here: the mounts that the inner part made under this
            # directory existed only in its mount namespace, which is gone.
            rm -rf -- "$PHI_RUN_DIR"
        fi
    fi
    if [ "$rc" = 0 ]; then
        _phi_msg "harness: $_PHI_CHECKS checks passed"
    elif [ "$rc" = 77 ]; then
        _phi_msg "harness: SKIPPED"
    else
        if [ -z "$_PHI_FAILED" ] && [ -n "$_PHI_ERR_MSG" ]; then
            _phi_msg "harness: ERROR: $_PHI_ERR_MSG"
        fi
        _phi_msg "harness: FAILED (status $rc) after $_PHI_CHECKS checks passed"
    fi
    exit "$rc"
}

_phi_on_err() {
    [ -n "$_PHI_ERR_MSG" ] || _PHI_ERR_MSG="command failed with status $1 at $3:$4: $2"
}

_phi_inner_init() {
    PHI_RUN_DIR=$_PHI_INNER
    # Not inherited: a test script started by this test gets its own namespaces
    # and its own clock.
    unset _PHI_INNER
    export -n _PHI_T0
    export PHI_RUN_DIR
    # Every mount below relies on being PID 1 of a fresh namespace set; never
    # run this part in the host's namespaces.
    [ "$$" = 1 ] || phi_die "inner part is not PID 1 of its own pid namespace"

    trap '_phi_on_err "$?" "$BASH_COMMAND" "${BASH_SOURCE[0]:-?}" "$LINENO"' ERR
    trap '_phi_inner_exit' EXIT
    # As PID 1 we would ignore these signals without handlers.
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM

    readlink /proc/self/ns/pid >"$PHI_RUN_DIR/pidns"
    PHI_TMP=$PHI_RUN_DIR/tmp
    mkdir -p "$PHI_TMP"
    export PHI_TMP
    # Tools that make temp files (mktemp, sort, slapadd) then write under
    # $PHI_TMP too.
    export TMPDIR=$PHI_TMP
    # unshare already did this; repeat it in case the host's util-linux did not.
    mount --make-rprivate /
    ip link set lo up
}

_phi_inner_exit() {
    local rc=$? i cmd
    # See _phi_outer_exit: only the main shell (PID 1) cleans up.
    [ "$BASHPID" = "$$" ] || return "$rc"
    set +e
    trap - ERR
    for ((i = ${#_PHI_ON_EXIT[@]} - 1; i >= 0; i--)); do
        cmd=${_PHI_ON_EXIT[i]}
        eval "$cmd" || phi_log "on-exit command failed: $cmd"
    done
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        if [ -z "$_PHI_FAILED" ] && [ -n "$_PHI_ERR_MSG" ]; then
            _phi_msg "harness: ERROR: $_PHI_ERR_MSG"
            _PHI_FAILED=1
        fi
        local log
        for log in "${_PHI_LOG_FILES[@]}"; do
            [ -s "$log" ] || continue
            _phi_msg "---- last lines of $log:"
            tail -n 25 "$log" >&"$_PHI_MSG_FD"
        done
        if [ -n "${PHI_JOURNALD_PID:-}" ] && _phi_alive "$PHI_JOURNALD_PID"; then
            _phi_msg "---- last entries of the test's journal:"
            timeout 10 journalctl --no-pager -n 40 -o short-precise >&"$_PHI_MSG_FD" 2>&1
        fi
    fi
    _phi_stop_all 2>/dev/null
    echo "$_PHI_CHECKS" >"$PHI_RUN_DIR/inner-checks"
    if [ -z "${PHI_KEEP_TMP:-}" ]; then
        _phi_remove_tmp
    fi
    exit "$rc"
}

# _phi_others_alive: any process but us (PID 1) left in the namespace?
_phi_others_alive() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = 1 ] && continue
        if _phi_alive "$p"; then
            return 0
        fi
    done
    return 1
}

_phi_stop_all() {
    local i deadline
    local -a idx=("${!_PHI_PIDS[@]}")
    # Our own daemons first, newest first, so that e.g. a daemon can still log
    # to journald while it shuts down.
    for ((i = ${#idx[@]} - 1; i >= 0; i--)); do
        kill -TERM "${_PHI_PIDS[${idx[i]}]}" 2>/dev/null
    done
    # Then everything else the test started. kill(-1) from the PID 1 of a pid
    # namespace reaches exactly the other processes of that namespace. CONT
    # wakes processes a test stopped (SIGSTOP to fake a hung server).
    if [ "$$" = 1 ]; then
        kill -TERM -1 2>/dev/null
        kill -CONT -1 2>/dev/null
    fi
    _phi_to_us "$PHI_STOP_GRACE"
    _phi_now
    deadline=$((_PHI_NOW_US + _PHI_US))
    while _phi_others_alive; do
        _phi_now
        if [ "$_PHI_NOW_US" -ge "$deadline" ]; then
            phi_log "processes still running after SIGTERM + ${PHI_STOP_GRACE}s; sending SIGKILL:"
            ps -e -o pid=,args= 2>/dev/null 1>&"$_PHI_MSG_FD"
            [ "$$" = 1 ] && kill -KILL -1 2>/dev/null
            break
        fi
        sleep 0.02
    done
    wait 2>/dev/null
}

# Removing $PHI_TMP must never descend into a bind mount of a host directory
# (rm -rf would delete the host's files through it), so everything mounted
# under the run directory is detached first, and rm refuses to cross into any
# other file system.
_phi_remove_tmp() {
    local mp left
    while IFS= read -r mp; do
        umount -l "$mp" 2>/dev/null
    done < <(awk -v d="$PHI_RUN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    left=$(awk -v d="$PHI_RUN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
    if [ -n "$left" ]; then
        phi_log "not removing $PHI_TMP: still mounted: $left (the outer part removes it)"
        return
    fi
    rm -rf --one-file-system -- "$PHI_TMP"
}

# ---------------------------------------------------------------------------
# Private views of host directories

_phi_scratch() {
    # One tmpfs for overlay upper/work dirs and stashes: overlayfs refuses an
    # upper dir on overlayfs, which is what /tmp is inside many containers.
    if [ -z "${_PHI_SCRATCH:-}" ]; then
        _PHI_SCRATCH=$PHI_TMP/.mnt
        mkdir -p "$_PHI_SCRATCH"
        mount -t tmpfs -o mode=0700 phi-scratch "$_PHI_SCRATCH"
    fi
}

# _phi_overlay DIR: DIR becomes a writable overlay of itself whose changes stay
# in this mount namespace. Mounts below DIR (/dev/pts, /dev/shm, ...) would be
# hidden by the overlay, so they are carried over through a temporary stash.
_phi_overlay() {
    local dir=$1 n base sub kept
    [ -z "${_PHI_OVERLAID[$dir]:-}" ] || return 0
    _phi_scratch
    n=${#_PHI_OVERLAID[@]}
    base=$_PHI_SCRATCH/ovl$n
    mkdir -p "$base/upper" "$base/work" "$base/stash"
    local -a subs=()
    while IFS= read -r sub; do
        # Keep only the topmost mounts; --rbind brings the ones below along.
        if [ -n "${kept:-}" ] && [[ "$sub" == "$kept"/* ]]; then
            continue
        fi
        subs+=("$sub")
        kept=$sub
    done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -u)
    if [ ${#subs[@]} -gt 0 ]; then
        mount --rbind "$dir" "$base/stash"
    fi
    mount -t overlay -o "lowerdir=$dir,upperdir=$base/upper,workdir=$base/work" phi-overlay "$dir" ||
        phi_die "cannot mount an overlay on $dir (needs overlayfs in the kernel)"
    for sub in "${subs[@]}"; do
        mount --rbind "$base/stash/${sub#"$dir"/}" "$sub"
    done
    if [ ${#subs[@]} -gt 0 ]; then
        umount -R -l "$base/stash"
    fi
    rmdir "$base/stash"
    _PHI_OVERLAID[$dir]=1
}

# phi_private_dir PATH: afterwards PATH is an empty directory that only this
# test sees. An existing PATH gets a tmpfs mounted over it. A missing PATH is
# created inside a private overlay of its nearest existing ancestor, so the
# host's directory tree is not touched.
phi_private_dir() {
    local path anc
    path=$(realpath -m -- "$1")
    if [ -d "$path" ]; then
        mount -t tmpfs -o mode=0755 phi-private "$path"
        return 0
    fi
    [ ! -e "$path" ] || phi_die "phi_private_dir: $path exists and is not a directory"
    anc=$path
    while [ ! -e "$anc" ]; do
        anc=$(dirname -- "$anc")
    done
    [ -d "$anc" ] || phi_die "phi_private_dir: $anc is not a directory"
    _phi_overlay "$anc"
    mkdir -p -- "$path"
}

# phi_ns_run [--bind SRC:DEST]... -- CMD...
# Runs CMD in a further private mount namespace in which each SRC is bind-
# mounted over DEST; returns CMD's exit status (125 if a mount failed). Typical
# use: a test nsswitch.conf or PAM service for one command:
#   phi_ns_run --bind "$PHI_TMP/nsswitch.conf:/etc/nsswitch.conf" \
#              --bind "$PHI_TMP/pam-svc:/etc/pam.d/phi-test" -- pamtester phi-test alice authenticate
# An existing DEST is bound over (file on file, dir on dir) and SRC stays live:
# later edits to SRC show through. A DEST that does not exist (a new
# /etc/pam.d/NAME) is never created on the host: its parent directory is copied
# to $PHI_TMP, a copy of SRC is put in the copy, and the copy is bound over the
# parent. Only the parent must exist. Processes CMD leaves in the background
# keep the namespace (and the binds) until the test ends.
phi_ns_run() {
    local spec src dest parent copy
    local -a dir_binds=() file_binds=()
    local -A copies=()
    [ -n "${PHI_TMP:-}" ] || phi_die "phi_ns_run needs phi_harness_init first"
    while [ $# -gt 0 ]; do
        case "$1" in
            --bind) [ $# -ge 2 ] || phi_die "phi_ns_run: --bind needs SRC:DEST"; spec=$2; shift 2 ;;
            --bind=*) spec=${1#--bind=}; shift ;;
            --) shift; break ;;
            *) phi_die "phi_ns_run: unexpected '$1' (put -- before the command)" ;;
        esac
        [[ "$spec" == *:* ]] || phi_die "phi_ns_run: --bind wants SRC:DEST, got '$spec'"
        src=$(realpath -e -- "${spec%%:*}") || phi_die "phi_ns_run: no such file: ${spec%%:*}"
        dest=${spec#*:}
        [[ "$dest" == /* ]] || phi_die "phi_ns_run: DEST must be absolute: $dest"
        if [ -e "$dest" ]; then
            file_binds+=("$src" "$dest")
            continue
        fi
        parent=$(dirname -- "$dest")
        [ -d "$parent" ] || phi_die "phi_ns_run: neither $dest nor its parent exists"
        copy=${copies[$parent]:-}
        if [ -z "$copy" ]; then
            copy=$(mktemp -d "$PHI_TMP/ns-run.XXXXXX")
            cp -a -- "$parent/." "$copy/"
            copies[$parent]=$copy
            dir_binds+=("$copy" "$parent")
        fi
        cp -a -- "$src" "$copy/$(basename -- "$dest")"
    done
    [ $# -gt 0 ] || phi_die "phi_ns_run: no command"
    # Directory copies first, so that file binds into the same directory land
    # on top of the copy.
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare --mount --propagation private -- bash -c '
        while [ "$1" != -- ]; do
            mount --bind "$1" "$2" || { echo "phi_ns_run: cannot bind $1 over $2" >&2; exit 125; }
            shift 2
        done
        shift
        exec "$@"' phi-ns-run "${dir_binds[@]}" "${file_binds[@]}" -- "$@"
}

# ---------------------------------------------------------------------------
# LDAP

phi_gen_ldif() {
    "$PHI_GEN_LDIF" "$@"
}

# phi_slapd_start [--name NAME] [--port PORT] [--rootpw PW] SUFFIX [LDIF]
# A throwaway slapd (mdb, syncprov, rfc2307bis schema) on
# ldap://127.0.0.1:PORT (default $PHI_SLAPD_PORT, 3890), LDIF bulk-loaded with
# `slapadd -q` before start. Anonymous reads are allowed and there are no size
# or time limits. Exports, for this instance:
#   PHI_LDAP_URI PHI_LDAP_BASE PHI_LDAP_PORT PHI_LDAP_ROOTDN (cn=admin,SUFFIX)
#   PHI_LDAP_ROOTPW PHI_LDAP_ROOTPW_FILE (no newline: for ldap* -y)
#   PHI_SLAPD_PID PHI_SLAPD_DIR PHI_SLAPD_LOG
# NAME (default "ldap") tells several instances apart; each needs its own port.
# The exported variables describe the instance last started or restarted.
phi_slapd_start() {
    local name=ldap port=$PHI_SLAPD_PORT rootpw=phi-test-rootpw
    while [ $# -gt 0 ]; do
        case "$1" in
            --name) name=$2; shift 2 ;;
            --port) port=$2; shift 2 ;;
            --rootpw) rootpw=$2; shift 2 ;;
            *) break ;;
        esac
    done
    [ $# -ge 1 ] || phi_die "usage: phi_slapd_start [--name N] [--port P] [--rootpw PW] SUFFIX [LDIF]"
    local suffix=$1 ldif=${2:-} dir other
    [ -n "${PHI_TMP:-}" ] || phi_die "phi_slapd_start needs phi_harness_init first"
    [ -z "${_PHI_SLAPD_DIR[$name]:-}" ] || phi_die "slapd '$name' exists; use phi_slapd_restart"
    for other in "${!_PHI_SLAPD_PORT[@]}"; do
        [ "${_PHI_SLAPD_PORT[$other]}" != "$port" ] || phi_die "port $port is taken by slapd '$other'"
    done
    command -v slapd >/dev/null || PATH=$PATH:/usr/sbin
    command -v slapd >/dev/null || phi_die "slapd is not installed (apt-get install slapd ldap-utils)"
    [ -z "$ldif" ] || [ -r "$ldif" ] || phi_die "cannot read LDIF $ldif"

    dir=$PHI_TMP/slapd-$name
    mkdir -p "$dir/db"
    printf '%s' "$rootpw" >"$dir/rootpw"
    chmod 600 "$dir/rootpw"
    cat >"$dir/slapd.conf" <<EOF
# Generated by tests/lib/harness.bash for one test run.
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include "$PHI_LIB_DIR/rfc2307bis.schema"

pidfile "$dir/slapd.pid"
argsfile "$dir/slapd.args"
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov

# The defaults (500 entries, 3600 s) would cut off a full sync of a large
# directory; phiaccessd pages its searches anyway.
sizelimit unlimited
timelimit unlimited

database mdb
suffix "$suffix"
rootdn "cn=admin,$suffix"
rootpw "$rootpw"
directory "$dir/db"
# Address space, not disk: data.mdb is sparse. 100,000 users take ~150 MB.
maxsize 4294967296
index objectClass,entryCSN,entryUUID eq
index uid,uidNumber,gidNumber,memberUid,member,cn eq

overlay syncprov
syncprov-checkpoint 100 5
syncprov-sessionlog 10000
EOF
    if [ -n "$ldif" ]; then
        slapadd -q -f "$dir/slapd.conf" -l "$ldif" >"$dir/slapadd.log" 2>&1 ||
            phi_die "slapadd of $ldif failed:"$'\n'"$(tail -n 20 "$dir/slapadd.log")"
    fi
    _PHI_SLAPD_DIR[$name]=$dir
    _PHI_SLAPD_PORT[$name]=$port
    _PHI_SLAPD_SUFFIX[$name]=$suffix
    _phi_slapd_launch "$name"
}

_phi_slapd_launch() {
    local name=$1 dir port uri pid
    dir=${_PHI_SLAPD_DIR[$name]}
    port=${_PHI_SLAPD_PORT[$name]}
    uri=ldap://127.0.0.1:$port
    # Foreground (-d) so that $! is slapd itself; runs as root because the
    # temp files are root's (no -u/-g).
    phi_spawn "slapd-$name" slapd -h "$uri/" -f "$dir/slapd.conf" -d "$PHI_SLAPD_DEBUG"
    pid=$PHI_LAST_PID
    _PHI_SLAPD_PID[$name]=$pid
    if ! phi_wait_for --timeout "${PHI_SLAPD_TIMEOUT:-20}" --what "slapd '$name' on $uri" \
        _phi_slapd_ready "$pid" "$uri"; then
        phi_die "slapd '$name' did not answer on $uri; its log:"$'\n'"$(tail -n 30 "$PHI_TMP/slapd-$name.log")"
    fi
    export PHI_LDAP_URI=$uri
    export PHI_LDAP_PORT=$port
    export PHI_LDAP_BASE=${_PHI_SLAPD_SUFFIX[$name]}
    export PHI_LDAP_ROOTDN="cn=admin,${_PHI_SLAPD_SUFFIX[$name]}"
    PHI_LDAP_ROOTPW=$(cat "$dir/rootpw")
    export PHI_LDAP_ROOTPW
    export PHI_LDAP_ROOTPW_FILE=$dir/rootpw
    export PHI_SLAPD_PID=$pid
    export PHI_SLAPD_DIR=$dir
    export PHI_SLAPD_LOG=$PHI_TMP/slapd-$name.log
    phi_log "slapd '$name' up on $uri (pid $pid)"
}

_phi_slapd_ready() {
    local pid=$1 uri=$2
    # Exiting from inside phi_wait_for ends the wait at once: no point polling
    # a slapd that has already died (bad config, port in use).
    _phi_alive "$pid" || phi_die "slapd (pid $pid) exited during start-up; its log:"$'\n'"$(tail -n 30 "$PHI_TMP/${_PHI_PID_NAME[$pid]}.log")"
    ldapsearch -x -LLL -H "$uri" -o nettimeout=1 -b '' -s base '(objectClass=*)' 1.1 >/dev/null 2>&1
}

# phi_slapd_stop [--kill] [NAME]: TERM (clean shutdown) or KILL (crash; mdb
# survives it). The data directory stays for phi_slapd_restart.
phi_slapd_stop() {
    local kill="" name=ldap pid
    if [ "${1:-}" = --kill ]; then
        kill=--kill
        shift
    fi
    name=${1:-ldap}
    [ -n "${_PHI_SLAPD_DIR[$name]:-}" ] || phi_die "no slapd named '$name'"
    pid=${_PHI_SLAPD_PID[$name]:-}
    [ -n "$pid" ] || return 0
    phi_stop_pid $kill "$pid"
    _PHI_SLAPD_PID[$name]=""
    phi_log "slapd '$name' stopped${kill:+ (SIGKILL)}"
}

# phi_slapd_restart [--kill] [NAME]: stop (if running) and start again on the
# same port with the same data, including changes made after the load.
phi_slapd_restart() {
    local kill=""
    if [ "${1:-}" = --kill ]; then
        kill=--kill
        shift
    fi
    local name=${1:-ldap}
    phi_slapd_stop $kill "$name"
    _phi_slapd_launch "$name"
}

phi_ldapsearch() {
    local a
    for a in "$@"; do
        if [ "$a" = -b ]; then
            ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=5 -H "$PHI_LDAP_URI" "$@"
            return
        fi
    done
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=5 -H "$PHI_LDAP_URI" -b "$PHI_LDAP_BASE" "$@"
}

phi_ldapmodify() {
    ldapmodify -x -o nettimeout=5 -H "$PHI_LDAP_URI" -D "$PHI_LDAP_ROOTDN" -y "$PHI_LDAP_ROOTPW_FILE" "$@"
}

# ---------------------------------------------------------------------------
# journald

# phi_journald_start [--no-devlog]
# Starts a private systemd-journald (there is no systemd PID 1 here). Its
# socket paths are fixed (/run/systemd/journal/...), so first /run/systemd/journal,
# /run/log/journal and /var/log/journal (if present) become private empty
# directories (phi_private_dir): the host and other tests never see this
# journal, and journalctl in this test reads only it. A drop-in in the private
# /run/systemd/journald.conf.d keeps it volatile, unthrottled and away from
# /dev/kmsg and the console.
# /dev/log: syslog(3) callers (sudo, sshd, pam_unix) write to /dev/log, which
# is missing here, and /dev is the host's devtmpfs (creating it there would be
# visible to everyone). Unless --no-devlog is given, /dev becomes a private
# overlay of itself in this mount namespace (devpts, shm etc. carried over)
# with /dev/log -> /run/systemd/journal/dev-log. Programs that use the native
# journal protocol (sd_journal_send, systemd-cat) do not need /dev/log. Note
# that slapd also syslogs (its connection/operation "stats" lines), so with a
# running slapd the journal holds more than the test's own entries: filter by
# SYSLOG_IDENTIFIER or other fields.
# Exports PHI_JOURNALD_PID and PHI_JOURNALD_LOG (journald's own stderr).
phi_journald_start() {
    local devlog=1 conf
    [ "${1:-}" != --no-devlog ] || devlog=0
    [ -x "$PHI_JOURNALD_BIN" ] || phi_die "$PHI_JOURNALD_BIN is missing (apt-get install systemd)"
    [ -z "${PHI_JOURNALD_PID:-}" ] || phi_die "journald is already running (pid $PHI_JOURNALD_PID)"
    phi_private_dir /run/systemd/journal
    phi_private_dir /run/systemd/journald.conf.d
    phi_private_dir /run/log/journal
    if [ -d /var/log/journal ]; then
        phi_private_dir /var/log/journal
    fi
    # Drop-ins apply in name order across /etc, /run and /usr/lib, so "zz-"
    # wins over the host's own drop-ins.
    conf=/run/systemd/journald.conf.d/zz-phi-test.conf
    cat >"$conf" <<'EOF'
[Journal]
Storage=volatile
RateLimitIntervalSec=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
MaxLevelStore=debug
EOF
    if [ "$devlog" = 1 ]; then
        _phi_devlog
    fi
    phi_spawn journald env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES \
        -u WATCHDOG_USEC -u WATCHDOG_PID "$PHI_JOURNALD_BIN"
    PHI_JOURNALD_PID=$PHI_LAST_PID
    PHI_JOURNALD_LOG=$PHI_TMP/journald.log
    export PHI_JOURNALD_PID PHI_JOURNALD_LOG
    if ! phi_wait_for --timeout 10 --what "journald sockets" _phi_journald_ready; then
        phi_die "systemd-journald did not come up; its log:"$'\n'"$(tail -n 30 "$PHI_JOURNALD_LOG")"
    fi
    phi_log "journald up (pid $PHI_JOURNALD_PID)"
}

_phi_journald_ready() {
    _phi_alive "$PHI_JOURNALD_PID" || phi_die "systemd-journald exited during start-up; its log:"$'\n'"$(tail -n 30 "$PHI_JOURNALD_LOG")"
    [ -S /run/systemd/journal/socket ] && [ -S /run/systemd/journal/stdout ] &&
        [ -S /run/systemd/journal/dev-log ] && [ -S /run/systemd/journal/io.systemd.journal ]
}

_phi_devlog() {
    local target=/run/systemd/journal/dev-log
    # A systemd host already has exactly this link; it now leads to our journald.
    if [ -L /dev/log ] && [ "$(readlink /dev/log)" = "$target" ]; then
        return 0
    fi
    _phi_overlay /dev
    # A real socket here would belong to the host's syslog daemon; the overlay
    # hides it from this test only.
    rm -f /dev/log
    ln -s "$target" /dev/log
}

phi_journald_stop() {
    [ -n "${PHI_JOURNALD_PID:-}" ] || return 0
    phi_stop_pid "$PHI_JOURNALD_PID"
    PHI_JOURNALD_PID=""
}

# phi_journal_cursor: prints the cursor of the newest entry (empty if none),
# after making journald write out everything sent so far. Pass it to
# phi_journal_json/phi_journal_wait --after to see only later entries.
phi_journal_cursor() {
    local line
    journalctl --sync
    journalctl -n 0 --show-cursor --no-pager | while IFS= read -r line; do
        [[ "$line" != "-- cursor: "* ]] || printf '%s\n' "${line#-- cursor: }"
    done
}

# phi_journal_json [--after CURSOR] [JOURNALCTL ARGS / FIELD=VALUE MATCHES...]
# One JSON object per line (journalctl -o json --all: --all because fields over
# 4096 bytes are otherwise shown as null). `journalctl --sync` first, so every
# message sent before the call is in the output. --after CURSOR: only entries
# newer than CURSOR. journalctl 252's --after-cursor combined with a match
# silently drops the first match, so this uses --cursor and skips the cursor's
# own entry instead.
phi_journal_json() {
    local after="" first=1 line
    if [ "${1:-}" = --after ]; then
        after=$2
        shift 2
    fi
    journalctl --sync || phi_die "journalctl --sync failed (is phi_journald_start running?)"
    if [ -z "$after" ]; then
        journalctl -o json --all --no-pager "$@"
        return
    fi
    journalctl -o json --all --no-pager --cursor="$after" "$@" | while IFS= read -r line; do
        if [ "$first" = 1 ]; then
            first=0
            [[ "$line" == *"\"__CURSOR\":\"$after\""* ]] && continue
        fi
        printf '%s\n' "$line"
    done
}

# phi_journal_wait [--timeout S] [--after CURSOR] [--first] [ARGS/MATCHES...]:
# polls until at least one entry matches, prints the matching entries as JSON
# lines (with --first only the oldest); returns 1 after the timeout (default
# 10 s). Use --first rather than `| head -n 1`: head exits after one line, the
# rest of a long output then meets a closed pipe, and under pipefail that
# SIGPIPE (141) fails the test now and then.
phi_journal_wait() {
    local timeout=10 after="" first=0 out deadline
    while [ $# -gt 0 ]; do
        case "$1" in
            --timeout) timeout=$2; shift 2 ;;
            --after) after=$2; shift 2 ;;
            --first) first=1; shift ;;
            *) break ;;
        esac
    done
    _phi_to_us "$timeout"
    _phi_now
    deadline=$((_PHI_NOW_US + _PHI_US))
    while :; do
        if [ -n "$after" ]; then
            out=$(phi_journal_json --after "$after" "$@")
        else
            out=$(phi_journal_json "$@")
        fi
        if [ -n "$out" ]; then
            if [ "$first" = 1 ]; then
                printf '%s\n' "${out%%$'\n'*}"
            else
                printf '%s\n' "$out"
            fi
            return 0
        fi
        _phi_now
        if [ "$_PHI_NOW_US" -ge "$deadline" ]; then
            phi_log "timed out after ${timeout}s waiting for journal entries matching: $*"
            return 1
        fi
        sleep 0.1
    done
}

# phi_json_field FIELD: for each JSON object on stdin (one per line, as
# journalctl -o json writes them), prints the string value of the top-level
# FIELD, unescaped, on one line (an empty line if absent). Arrays (repeated or
# binary fields) and null are printed as raw JSON. No jq needed.
# shellcheck disable=SC1003,SC2059 # literal backslashes; \uXXXX via printf
phi_json_field() {
    local field=$1 line v hex ch re_str re_raw
    local bs=$'\x01' q='"' sl='/' nl=$'\n' tab=$'\t' cr=$'\r' bsp=$'\b' ff=$'\f'
    re_str="[{,]\"$field\":\"(([^\"\\\\]|\\\\.)*)\""
    re_raw="[{,]\"$field\":(null|\\[[^]]*\\]|[0-9.eE+-]+|true|false)"
    while IFS= read -r line; do
        if [[ "$line" =~ $re_str ]]; then
            v=${BASH_REMATCH[1]}
            # Quoted replacements: bash 5.2's patsub_replacement would treat a
            # bare & in them as "the matched text".
            v=${v//'\\'/"$bs"}
            v=${v//'\"'/"$q"}
            v=${v//'\/'/"$sl"}
            v=${v//'\n'/"$nl"}
            v=${v//'\t'/"$tab"}
            v=${v//'\r'/"$cr"}
            v=${v//'\b'/"$bsp"}
            v=${v//'\f'/"$ff"}
            while [[ "$v" =~ \\u([0-9a-fA-F]{4}) ]]; do
                hex=${BASH_REMATCH[1]}
                printf -v ch "\\u$hex"
                v=${v//"\\u$hex"/"$ch"}
            done
            v=${v//"$bs"/'\'}
            printf '%s\n' "$v"
        elif [[ "$line" =~ $re_raw ]]; then
            printf '%s\n' "${BASH_REMATCH[1]}"
        else
            printf '\n'
        fi
    done
}
