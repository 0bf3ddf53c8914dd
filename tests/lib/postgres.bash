# shellcheck shell=bash
# tests/lib/postgres.bash: a private PostgreSQL 15 for one test, on a Unix
# socket in the test's temp dir only (listen_addresses=''), run as nobody
# (initdb refuses root), stopped at the test's exit so that no process is
# ever left. Source it after tests/lib/harness.bash, call it after
# phi_harness_init.
#
#   phi_pg_start            initdb, start, wait for pg_isready; then a
#                           database phi owned by the role phi_owner, and a
#                           role phid with exactly the rights phiaccessd(8)
#                           lists for the daemon
#   phi_pg_stop             pg_ctl stop -m fast
#   phi_pg_restart          start again on the same data directory
#   phi_pg_psql ARGS...     psql as the superuser on database phi (or -d DB)
#
# After phi_pg_start: PHI_PG_DIR (data), PHI_PG_SOCK (socket directory),
# PHI_PG_URI (the daemon's connection string, role phid) and
# PHI_PG_URI_OWNER (the schema owner's, for phiaccessd --init-store).
# Local connections use trust authentication: only root and nobody can
# reach the socket directory, inside the test's namespaces. PHI_PG_LISTEN
# (default none) makes the server also listen on that address of the
# test's own loopback, for a test of what a TCP connection may do;
# PHI_PG_OPTS adds server settings ("-c ssl=on -c ssl_cert_file=...",
# words without spaces).

: "${PHI_PG_BIN:=/usr/lib/postgresql/15/bin}"
PHI_PG_USER=nobody
PHI_PG_PID=""
: "${PHI_PG_LISTEN:=}"

_phi_pg_as() {
    setpriv --reuid="$PHI_PG_USER" --regid=nogroup --clear-groups -- "$@"
}

phi_pg_start() {
    [ -n "${PHI_TMP:-}" ] || phi_die "phi_pg_start needs phi_harness_init first"
    [ -x "$PHI_PG_BIN/initdb" ] || phi_skip "PostgreSQL 15 is not installed ($PHI_PG_BIN; apt-get install postgresql)"
    PHI_PG_DIR=$PHI_TMP/pg/data
    PHI_PG_SOCK=$PHI_TMP/pg/sock
    mkdir -p "$PHI_PG_DIR" "$PHI_PG_SOCK"
    chown -R "$PHI_PG_USER:nogroup" "$PHI_TMP/pg"
    chmod 0700 "$PHI_PG_DIR"
    chmod 0755 "$PHI_PG_SOCK"
    # nobody must reach its directories: traversal only, nothing listed.
    chmod o+x "$PHI_TMP" "$PHI_RUN_DIR"
    _phi_pg_as "$PHI_PG_BIN/initdb" -D "$PHI_PG_DIR" -U postgres --auth=trust --no-instructions \
        --encoding=UTF8 --locale=C.UTF-8 >"$PHI_TMP/pg/initdb.log" 2>&1 ||
        phi_die "initdb failed: $(tail -5 "$PHI_TMP/pg/initdb.log")"
    phi_on_exit phi_pg_stop
    _phi_pg_spawn_as
    PHI_PG_URI="host=$PHI_PG_SOCK dbname=phi user=phid"
    PHI_PG_URI_OWNER="host=$PHI_PG_SOCK dbname=phi user=phi_owner"
    export PHI_PG_DIR PHI_PG_SOCK PHI_PG_URI PHI_PG_URI_OWNER
    phi_pg_psql -d postgres -q <<'EOF' >/dev/null
CREATE ROLE phi_owner LOGIN;
CREATE ROLE phid LOGIN;
CREATE DATABASE phi OWNER phi_owner;
REVOKE ALL ON DATABASE phi FROM PUBLIC;
GRANT CONNECT ON DATABASE phi TO phid;
EOF
    # The daemon's rights, as phiaccessd(8) lists them: USAGE on the schema,
    # SELECT, INSERT, UPDATE, DELETE on the tables the owner creates.
    phi_pg_psql -q <<'EOF' >/dev/null
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO phid;
ALTER DEFAULT PRIVILEGES FOR ROLE phi_owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO phid;
EOF
}

# The wrapper phi_spawn runs (as nobody).
_phi_pg_spawn_as() {
    local extra=()
    read -r -a extra <<<"${PHI_PG_OPTS:-}"
    phi_spawn postgres setpriv --reuid="$PHI_PG_USER" --regid=nogroup --clear-groups -- \
        "$PHI_PG_BIN/postgres" -D "$PHI_PG_DIR" -k "$PHI_PG_SOCK" -c listen_addresses="$PHI_PG_LISTEN" \
        -c fsync=on -c synchronous_commit=on -c max_connections=50 -c unix_socket_permissions=0777 \
        "${extra[@]}"
    PHI_PG_PID=$PHI_LAST_PID
    local i
    for ((i = 0; i < 300; i++)); do
        if "$PHI_PG_BIN/pg_isready" -q -h "$PHI_PG_SOCK" -d postgres -U postgres; then
            return 0
        fi
        _phi_alive "$PHI_PG_PID" || phi_die "postgres exited at start (see $PHI_TMP/postgres.log)"
        sleep 0.1
    done
    phi_die "postgres did not become ready in 30 s"
}

phi_pg_stop() {
    [ -n "$PHI_PG_PID" ] || return 0
    # fast: sessions (the daemon's) are ended, not waited for.
    _phi_pg_as "$PHI_PG_BIN/pg_ctl" stop -D "$PHI_PG_DIR" -m fast -w -t 20 >/dev/null 2>&1 || true
    phi_stop_pid "$PHI_PG_PID"
    PHI_PG_PID=""
}

phi_pg_restart() {
    [ -z "$PHI_PG_PID" ] || phi_die "phi_pg_restart: postgres is running"
    _phi_pg_spawn_as
}

phi_pg_psql() {
    local db=phi
    if [ "${1:-}" = -d ]; then
        db=$2
        shift 2
    fi
    "$PHI_PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$PHI_PG_SOCK" -U postgres -d "$db" "$@"
}

# A streaming replica of the server phi_pg_start made, for a failover test:
#
#   phi_pg_replica_start    pg_basebackup -R from the primary into
#                           PHI_PG_REPLICA_DIR, started on its own socket
#                           directory PHI_PG_REPLICA_SOCK; then the primary's
#                           synchronous_standby_names = '*', so that a COMMIT
#                           returns only once the replica has it
#   phi_pg_kill_primary     SIGKILL to the primary's postmaster (its backends
#                           see it die and exit)
#   phi_pg_promote          pg_ctl promote on the replica; phi_pg_psql then
#                           speaks to it
#
# PHI_PG_URI_BOTH: the daemon's string naming both socket directories, with
# target_session_attrs=read-write.
PHI_PG_REPLICA_PID=""

phi_pg_replica_start() {
    [ -n "$PHI_PG_PID" ] || phi_die "phi_pg_replica_start needs phi_pg_start first"
    PHI_PG_REPLICA_DIR=$PHI_TMP/pg/replica
    PHI_PG_REPLICA_SOCK=$PHI_TMP/pg/sock2
    mkdir -p "$PHI_PG_REPLICA_SOCK"
    chown "$PHI_PG_USER:nogroup" "$PHI_PG_REPLICA_SOCK"
    chmod 0755 "$PHI_PG_REPLICA_SOCK"
    _phi_pg_as "$PHI_PG_BIN/pg_basebackup" -h "$PHI_PG_SOCK" -U postgres -D "$PHI_PG_REPLICA_DIR" -R -X stream \
        -c fast >"$PHI_TMP/pg/basebackup.log" 2>&1 || phi_die "pg_basebackup failed: $(tail -5 "$PHI_TMP/pg/basebackup.log")"
    phi_on_exit phi_pg_replica_stop
    phi_spawn postgres-replica setpriv --reuid="$PHI_PG_USER" --regid=nogroup --clear-groups -- \
        "$PHI_PG_BIN/postgres" -D "$PHI_PG_REPLICA_DIR" -k "$PHI_PG_REPLICA_SOCK" -c listen_addresses= \
        -c fsync=on -c synchronous_commit=on -c max_connections=50 -c unix_socket_permissions=0777 \
        -c cluster_name=phi_replica
    PHI_PG_REPLICA_PID=$PHI_LAST_PID
    phi_wait_for --timeout 30 --what "the replica ready" "$PHI_PG_BIN/pg_isready" -q -h "$PHI_PG_REPLICA_SOCK" \
        -d postgres -U postgres || phi_die "the replica did not start (see $PHI_TMP/postgres-replica.log)"
    phi_wait_for --timeout 30 --what "the replica streaming" _phi_pg_replica_is streaming state ||
        phi_die "the replica does not stream"
    phi_pg_psql -d postgres -q -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" >/dev/null
    phi_wait_for --timeout 30 --what "the replica synchronous" _phi_pg_replica_is sync sync_state ||
        phi_die "the replica did not become a synchronous standby"
    PHI_PG_URI_BOTH="host=$PHI_PG_SOCK,$PHI_PG_REPLICA_SOCK dbname=phi user=phid target_session_attrs=read-write"
    PHI_PG_URI_OWNER="host=$PHI_PG_SOCK dbname=phi user=phi_owner"
    export PHI_PG_REPLICA_DIR PHI_PG_REPLICA_SOCK PHI_PG_URI_BOTH
}

_phi_pg_replica_is() { # VALUE COLUMN: the primary's pg_stat_replication says so
    [ "$(phi_pg_psql -d postgres -tAc "SELECT $2 FROM pg_stat_replication WHERE application_name = 'phi_replica'")" = "$1" ]
}

phi_pg_kill_primary() {
    [ -n "$PHI_PG_PID" ] || phi_die "phi_pg_kill_primary: no primary"
    kill -KILL "$PHI_PG_PID"
    phi_wait_for --timeout 10 --what "the primary gone" bash -c "! kill -0 $PHI_PG_PID 2>/dev/null" ||
        phi_die "the primary outlived SIGKILL"
    PHI_PG_PID=""
}

phi_pg_promote() {
    _phi_pg_as "$PHI_PG_BIN/pg_ctl" promote -D "$PHI_PG_REPLICA_DIR" -w -t 30 >/dev/null ||
        phi_die "pg_ctl promote failed"
    PHI_PG_SOCK=$PHI_PG_REPLICA_SOCK
}

phi_pg_replica_stop() {
    [ -n "$PHI_PG_REPLICA_PID" ] || return 0
    _phi_pg_as "$PHI_PG_BIN/pg_ctl" stop -D "$PHI_PG_REPLICA_DIR" -m fast -w -t 20 >/dev/null 2>&1 || true
    phi_stop_pid "$PHI_PG_REPLICA_PID"
    PHI_PG_REPLICA_PID=""
}
