/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PostgreSQL backend of the store's shared part (store.h), for hosts that
 * share tokens, watermarks, lockouts, sessions, requests and the audit log.
 * The identity part stays a local SQLite file (store_sqlite_identities.c).
 *
 * Semantics are the SQLite backend's, error codes included; where SQLite
 * relied on its single writer (BEGIN IMMEDIATE), this backend runs READ
 * COMMITTED transactions and locks what a read-modify-write reads (SELECT
 * ... FOR UPDATE in a transaction), and the replay rule is a conditional
 * UPDATE whose row count decides: of two daemons accepting one step, the
 * second UPDATE waits for the first's commit, re-reads the row, changes
 * nothing and gets -ESTALE.
 *
 * Every statement is prepared once per connection and runs with bound
 * parameters. Results are read strictly: a column of an unexpected type, a
 * NULL where none may be, a number that does not parse or a text longer than
 * its field is -EBADMSG. An INSERT that may find its key taken says ON
 * CONFLICT DO NOTHING and counts rows, so -EEXIST leaves the transaction
 * usable as SQLite's does.
 *
 * Errors: a serialization failure or deadlock (SQLSTATE 40001, 40P01) is
 * -EAGAIN; a lost connection (CONNECTION_BAD, class 08, the server shutting
 * down) is -ECONNRESET, and the next begin resets the connection once. A
 * commit counts only when the server answered COMMIT: PostgreSQL answers
 * ROLLBACK to a COMMIT of a failed transaction, and that is an error here.
 * The verifier does not serve a failed round again: its jobs' state
 * (elevation results, session watches, audit records) would all have to be
 * put back first. The round fails closed, every login in it is denied
 * (PAM_AUTHINFO_UNAVAIL) and asked again by its user; with one daemon a
 * deadlock needs the directory thread's revocations, which are rare.
 */

#include <errno.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "store.h"
#include "phi/secret.h"
#include "store_pg_conninfo.h"
#include "store_schema.h"
#include "store_sqlite_db.h"

/* Type OIDs (pg_type.h, stable across versions). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

/* The key of the advisory lock that serializes migrations across daemons
 * starting at once: "phi" and the schema's purpose, any fixed number. */
#define MIGRATION_LOCK 0x7068690073746f72LL

/* A canonical audit record is a few hundred bytes; a row past this was not
 * written by phiaccessd. */
#define AUDIT_LEAF_MAX (64u * 1024u)
#define NOTE_MAX (16u * 1024u)
#define PARAMS_MAX 24

struct pg_migration {
        unsigned version;
        const char *name;
        const char *sql;
};

/*
 * The same numbers as SQLite's (store_sqlite.c), so that schema_version means
 * the same on both. 1, 3 and 4 made and then dropped the identity tables,
 * which PostgreSQL never holds (they are per host): recorded, with nothing to
 * do. 2 is SQLite's in PostgreSQL's words: BYTEA for BLOB, BIGINT for the
 * times and counters, no WITHOUT ROWID, the reserved word user quoted. 5 on
 * are the very texts SQLite runs (store_schema.h).
 */
static const struct pg_migration migrations[] = {
        { 1, "identities", "SELECT 1" },
        { 2, "totp",
          "CREATE TABLE totp_tokens ("
          "  \"user\" TEXT NOT NULL, state INTEGER NOT NULL CHECK (state IN (1, 2)),"
          "  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),"
          "  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),"
          "  nonce BYTEA NOT NULL CHECK (octet_length(nonce) = 24), sealed BYTEA NOT NULL,"
          "  watermark BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL,"
          "  enrolled BIGINT NOT NULL DEFAULT 0,"
          "  PRIMARY KEY (\"user\", state));"
          "CREATE TABLE totp_tickets ("
          "  \"user\" TEXT PRIMARY KEY, expires BIGINT NOT NULL, created BIGINT NOT NULL);"
          "CREATE TABLE auth_failures ("
          "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)), key TEXT NOT NULL,"
          "  count BIGINT NOT NULL, window_start BIGINT NOT NULL,"
          "  locked_until BIGINT NOT NULL DEFAULT 0,"
          "  PRIMARY KEY (kind, key));" },
        { 3, "sync-search", "SELECT 1" },
        { 4, "identities-moved", "SELECT 1" },
        { 5, "token-identity", PHI_STORE_MIGRATION_5 },
        { 6, "sessions", PHI_STORE_MIGRATION_6 },
        { 7, "elevation", PHI_STORE_MIGRATION_7 },
        { 8, "audit", PHI_STORE_MIGRATION_8 },
        { 9, "session-grant", PHI_STORE_MIGRATION_9 },
        { 10, "changes", PHI_STORE_MIGRATION_10 },
};

enum {
        S_TOKEN_GET,
        S_TOKEN_GET_LOCK,
        S_TOKEN_PUT,
        S_TOKEN_ADVANCE,
        S_TOKEN_ACTIVATE_DROP,
        S_TOKEN_ACTIVATE,
        S_TOKEN_DELETE,
        S_TICKET_PUT,
        S_TICKET_GET,
        S_TICKET_DELETE,
        S_REVOKE_TOKENS,
        S_REVOKE_TICKETS,
        S_LEGACY_USERS,
        S_FAILURES_GET,
        S_FAILURES_GET_LOCK,
        S_FAILURES_PUT,
        S_FAILURES_DELETE,
        S_FAILURES_PRUNE,
        S_SESSION_PUT,
        S_SESSION_GET_LOCK,
        S_SESSION_DELETE,
        S_SESSION_LIST,
        S_SESSION_LIST_HOST,
        S_ELEV_PUT,
        S_ELEV_UPDATE,
        S_ELEV_GET,
        S_ELEV_GET_LOCK,
        S_ELEV_DECISION_ADD,
        S_ELEV_LIST,
        S_AUDIT_APPEND,
        S_AUDIT_TREE_GET,
        S_AUDIT_TREE_PUT,
        S_AUDIT_LEAF_HASH,
        S_AUDIT_ROWS,
        S_AUDIT_CHECKPOINT_PUT,
        S_AUDIT_CHECKPOINTS,
        S_AUDIT_TREE_LOCK,
        S_AUDIT_CHECKPOINT_LAST,
        S_ELEV_TRANSITION,
        S_CHANGE_ADD,
        S_CHANGE_NOTIFY,
        S_CHANGES_AFTER,
        S_CHANGES_MAX,
        S_CHANGES_PRUNE,
        S_TOKENS_RAISE_FLOOR,
        S_TICKETS_CLEAR,
        S_COUNTS,
        S_VERSION,
        S_BEGIN,
        S_COMMIT,
        S_ROLLBACK,
        _S_MAX,
};

#define TOKEN_SELECT                                                                              \
        "SELECT algorithm, digits, nonce, sealed, watermark, created, enrolled, identity FROM totp_tokens" \
        " WHERE \"user\" = $1 AND state = $2::integer"
#define SESSION_COLUMNS "id, user_name, service, rhost, tty, host, pid, pid_start, boot_id, opened, request_id"
#define ELEV_COLUMNS                                                                                     \
        "id, requester, role, grant_group, host, reason, ticket, state, breakglass, duration, start_at, created," \
        " pending_until, approvals_needed, approvals, denials, starts, expires, ended, ended_by, end_reason,"  \
        " reviewer, review_note, reviewed"
/* Paging compares and orders ids bytewise, as SQLite does, whatever the
 * database's collation. */
#define C_ORDER " COLLATE \"C\""

static const char *const statements[_S_MAX] = {
        [S_TOKEN_GET] = TOKEN_SELECT,
        [S_TOKEN_GET_LOCK] = TOKEN_SELECT " FOR UPDATE",
        [S_TOKEN_PUT] = "INSERT INTO totp_tokens (\"user\", state, algorithm, digits, nonce, sealed, watermark,"
                        " created, enrolled, identity) VALUES ($1, $2::integer, $3, $4::integer, $5::bytea,"
                        " $6::bytea, $7::bigint, $8::bigint, $9::bigint, $10)"
                        " ON CONFLICT (\"user\", state) DO UPDATE SET algorithm = EXCLUDED.algorithm,"
                        " digits = EXCLUDED.digits, nonce = EXCLUDED.nonce, sealed = EXCLUDED.sealed,"
                        " watermark = EXCLUDED.watermark, created = EXCLUDED.created,"
                        " enrolled = EXCLUDED.enrolled, identity = EXCLUDED.identity",
        /* The replay rule's last line: of two racing acceptances of one step,
         * only one changes a row (the other waits for its commit and then
         * finds the watermark there). */
        [S_TOKEN_ADVANCE] = "UPDATE totp_tokens SET watermark = $3::bigint"
                            " WHERE \"user\" = $1 AND state = $2::integer AND watermark < $3::bigint",
        [S_TOKEN_ACTIVATE_DROP] = "DELETE FROM totp_tokens WHERE \"user\" = $1 AND state = 2",
        [S_TOKEN_ACTIVATE] = "UPDATE totp_tokens SET state = 2, enrolled = $2::bigint"
                             " WHERE \"user\" = $1 AND state = 1",
        [S_TOKEN_DELETE] = "DELETE FROM totp_tokens WHERE \"user\" = $1",
        [S_TICKET_PUT] = "INSERT INTO totp_tickets (\"user\", expires, created, identity)"
                         " VALUES ($1, $2::bigint, $3::bigint, $4) ON CONFLICT (\"user\") DO UPDATE SET"
                         " expires = EXCLUDED.expires, created = EXCLUDED.created, identity = EXCLUDED.identity",
        [S_TICKET_GET] = "SELECT expires, created, identity FROM totp_tickets WHERE \"user\" = $1",
        [S_TICKET_DELETE] = "DELETE FROM totp_tickets WHERE \"user\" = $1",
        [S_REVOKE_TOKENS] = "DELETE FROM totp_tokens WHERE identity = $1",
        [S_REVOKE_TICKETS] = "DELETE FROM totp_tickets WHERE identity = $1",
        [S_LEGACY_USERS] = "SELECT u FROM (SELECT \"user\" AS u FROM totp_tokens WHERE identity IS NULL"
                           " UNION SELECT \"user\" FROM totp_tickets WHERE identity IS NULL) x ORDER BY u" C_ORDER,
        [S_FAILURES_GET] = "SELECT count, window_start, locked_until FROM auth_failures"
                           " WHERE kind = $1::integer AND key = $2",
        [S_FAILURES_GET_LOCK] = "SELECT count, window_start, locked_until FROM auth_failures"
                                " WHERE kind = $1::integer AND key = $2 FOR UPDATE",
        [S_FAILURES_PUT] = "INSERT INTO auth_failures (kind, key, count, window_start, locked_until)"
                           " VALUES ($1::integer, $2, $3::bigint, $4::bigint, $5::bigint)"
                           " ON CONFLICT (kind, key) DO UPDATE SET count = EXCLUDED.count,"
                           " window_start = EXCLUDED.window_start, locked_until = EXCLUDED.locked_until",
        [S_FAILURES_DELETE] = "DELETE FROM auth_failures WHERE kind = $1::integer AND key = $2",
        [S_FAILURES_PRUNE] = "DELETE FROM auth_failures WHERE locked_until <= $1::bigint"
                             " AND window_start + $2::bigint <= $1::bigint",
        [S_SESSION_PUT] = "INSERT INTO sessions (" SESSION_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7::bigint,"
                          " $8::bigint, $9, $10::bigint, $11) ON CONFLICT DO NOTHING",
        [S_SESSION_GET_LOCK] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = $1 FOR UPDATE",
        [S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = $1",
        [S_SESSION_LIST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE id" C_ORDER " > $1"
                           " ORDER BY id" C_ORDER " LIMIT $2::bigint",
        [S_SESSION_LIST_HOST] = "SELECT " SESSION_COLUMNS " FROM sessions WHERE host = $3 AND id" C_ORDER " > $1"
                                " ORDER BY id" C_ORDER " LIMIT $2::bigint",
        [S_ELEV_PUT] = "INSERT INTO elevation_requests (" ELEV_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7,"
                       " $8::integer, $9::integer, $10::bigint, $11::bigint, $12::bigint, $13::bigint,"
                       " $14::integer, $15::integer, $16::integer, $17::bigint, $18::bigint, $19::bigint, $20,"
                       " $21, $22, $23, $24::bigint) ON CONFLICT DO NOTHING",
        [S_ELEV_UPDATE] = "UPDATE elevation_requests SET state = $2::integer, approvals = $3::integer,"
                          " denials = $4::integer, starts = $5::bigint, expires = $6::bigint, ended = $7::bigint,"
                          " ended_by = $8, end_reason = $9, reviewer = $10, review_note = $11,"
                          " reviewed = $12::bigint WHERE id = $1",
        [S_ELEV_GET] = "SELECT " ELEV_COLUMNS " FROM elevation_requests WHERE id = $1",
        [S_ELEV_GET_LOCK] = "SELECT " ELEV_COLUMNS " FROM elevation_requests WHERE id = $1 FOR UPDATE",
        [S_ELEV_DECISION_ADD] = "INSERT INTO elevation_decisions (request_id, approver, approve, reason, decided)"
                                " VALUES ($1, $2, $3::integer, $4, $5::bigint) ON CONFLICT DO NOTHING",
        [S_ELEV_LIST] = "SELECT " ELEV_COLUMNS " FROM elevation_requests WHERE (($1::bigint / (1 << state)) % 2) = 1"
                        " AND ($2::text = '' OR requester = $2) AND id" C_ORDER " > $3 ORDER BY id" C_ORDER
                        " LIMIT $4::bigint",
        [S_AUDIT_APPEND] = "INSERT INTO audit_log (seq, time_us, event, user_name, actor, role, request_id, host,"
                           " leaf, leaf_hash) VALUES ($1::bigint, $2::bigint, $3, $4, $5, $6, $7, $8, $9, $10)"
                           " ON CONFLICT DO NOTHING",
        [S_AUDIT_TREE_GET] = "SELECT state FROM audit_tree WHERE id = 1",
        [S_AUDIT_TREE_PUT] = "INSERT INTO audit_tree (id, state) VALUES (1, $1)"
                             " ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        [S_AUDIT_LEAF_HASH] = "SELECT leaf_hash FROM audit_log WHERE seq = $1::bigint",
        [S_AUDIT_ROWS] = "SELECT seq, time_us, event, user_name, actor, role, request_id, host, leaf, leaf_hash"
                         " FROM audit_log WHERE seq >= $1::bigint AND ($2::text = '' OR event = $2)"
                         " AND ($3::text = '' OR user_name = $3) AND ($4::text = '' OR actor = $4)"
                         " AND ($5::text = '' OR role = $5) AND ($6::text = '' OR request_id = $6)"
                         " AND ($7::text = '' OR host = $7) AND ($8::bigint = 0 OR time_us >= $8::bigint)"
                         " AND ($9::bigint = 0 OR time_us < $9::bigint) ORDER BY seq LIMIT $10::bigint",
        [S_AUDIT_CHECKPOINT_PUT] = "INSERT INTO audit_checkpoints (size, note, created)"
                                   " VALUES ($1::bigint, $2, $3::bigint) ON CONFLICT DO NOTHING",
        [S_AUDIT_CHECKPOINTS] = "SELECT size, created, note FROM audit_checkpoints WHERE size >= $1::bigint"
                                " ORDER BY size LIMIT $2::bigint",
        /* Every round takes it first: rounds of the fleet's daemons append to
         * the tree, and number their changes, one after another. */
        [S_AUDIT_TREE_LOCK] = "SELECT state FROM audit_tree WHERE id = 1 FOR UPDATE",
        [S_AUDIT_CHECKPOINT_LAST] = "SELECT size, created FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        /* S_ELEV_UPDATE, only if the row is still as read ($13..$16). */
        [S_ELEV_TRANSITION] = "UPDATE elevation_requests SET state = $2::integer, approvals = $3::integer,"
                              " denials = $4::integer, starts = $5::bigint, expires = $6::bigint,"
                              " ended = $7::bigint, ended_by = $8, end_reason = $9, reviewer = $10,"
                              " review_note = $11, reviewed = $12::bigint WHERE id = $1 AND state = $13::integer"
                              " AND approvals = $14::integer AND denials = $15::integer AND reviewed = $16::bigint",
        /* max + 1 under the tree's row lock: no gaps, committed in order. */
        [S_CHANGE_ADD] = "INSERT INTO changes (seq, kind, subject, host, created)"
                         " SELECT COALESCE(MAX(seq), 0) + 1, $1::integer, $2, $3, $4::bigint FROM changes",
        /* Delivered at commit, to the daemons that LISTEN: a wake-up only. */
        [S_CHANGE_NOTIFY] = "SELECT pg_notify('phi_changes', '')",
        [S_CHANGES_AFTER] = "SELECT seq, kind, subject, host, created FROM changes WHERE seq > $1::bigint"
                            " ORDER BY seq LIMIT $2::bigint",
        [S_CHANGES_MAX] = "SELECT COALESCE(MAX(seq), 0)::bigint FROM changes",
        [S_CHANGES_PRUNE] = "DELETE FROM changes WHERE created < $1::bigint AND seq < (SELECT MAX(seq) FROM changes)",
        [S_TOKENS_RAISE_FLOOR] = "UPDATE totp_tokens SET watermark = $1::bigint WHERE watermark < $1::bigint",
        [S_TICKETS_CLEAR] = "DELETE FROM totp_tickets",
        [S_COUNTS] = "SELECT (SELECT COUNT(*) FROM totp_tokens WHERE state = 2),"
                     " (SELECT COUNT(*) FROM totp_tokens WHERE state = 1),"
                     " (SELECT COUNT(*) FROM totp_tickets), (SELECT COUNT(*) FROM auth_failures)",
        [S_VERSION] = "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
        [S_BEGIN] = "BEGIN ISOLATION LEVEL READ COMMITTED",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
};

struct pg {
        PGconn *conn;
        char *conninfo;
        char synchronous_commit[16];
        char where[512];                /* host:port db NAME, for logs and status */
        bool prepared[_S_MAX];
        bool in_tx;
        bool down;                      /* the loss is logged once, and the recovery */
        /* The change feed's wake-up (changes_wake_fd): a connection of its
         * own that LISTENs, used only by the thread that reads the feed. Its
         * socket changes with each reconnection, so the reader gets an epoll
         * descriptor that holds the socket while connected and a timer while
         * not: readable when a notification came, or when it is time to
         * connect again. */
        PGconn *listen;
        int listen_epoll, listen_timer, listen_sock;
        unsigned listen_backoff_s;
        bool listen_lost;               /* logged once per loss */
};

/* Bound parameters, all sent as text but the BYTEA ones (binary). */
struct params {
        const char *v[PARAMS_MAX];
        int len[PARAMS_MAX];
        int fmt[PARAMS_MAX];
        char num[PARAMS_MAX][24];
        int n;
        bool bad;
};

static void p_text(struct params *p, const char *v) {
        if (p->n >= PARAMS_MAX) {
                p->bad = true;
                return;
        }
        p->v[p->n] = v ? v : "";
        p->len[p->n] = 0;
        p->fmt[p->n] = 0;
        p->n++;
}

static void p_u64(struct params *p, uint64_t v) {
        /* BIGINT is signed: a larger value is refused, as SQLite's bind is. */
        if (p->n >= PARAMS_MAX || v > INT64_MAX) {
                p->bad = true;
                return;
        }
        snprintf(p->num[p->n], sizeof(p->num[p->n]), "%llu", (unsigned long long) v);
        p_text(p, p->num[p->n]);
}

static void p_bytes(struct params *p, const void *v, size_t len) {
        if (p->n >= PARAMS_MAX || len > INT32_MAX) {
                p->bad = true;
                return;
        }
        p->v[p->n] = v;
        p->len[p->n] = (int) len;
        p->fmt[p->n] = 1;
        p->n++;
}

static bool conn_lost(const struct pg *s) { return !s->conn || PQstatus(s->conn) == CONNECTION_BAD; }

/* One outage, one event, for the daemon: each of its threads has a
 * connection of its own, and each finds the database gone; the others say
 * so in a plain log line. */
static atomic_bool outage_journaled;

/* libpq's message names the host, never the password; it comes in lines,
 * indented: one line here. */
static void error_line(PGconn *c, char *why, size_t len) {
        size_t n = 0;

        for (const char *p = c ? PQerrorMessage(c) : "no connection"; *p && n + 1 < len; p++) {
                char ch = *p == '\n' || *p == '\t' ? ' ' : *p;
                if (ch == ' ' && (n == 0 || why[n - 1] == ' '))
                        continue;
                why[n++] = ch;
        }
        while (n > 0 && why[n - 1] == ' ')
                n--;
        why[n] = '\0';
}

static void note_down(struct pg *s, const char *what) {
        char why[512];

        if (s->down)
                return;
        s->down = true;
        error_line(s->conn, why, sizeof(why));
        {
                const struct phi_journal_field fields[] = {
                        { "PHI_STORE", s->where },
                        { "PHI_ERROR", why },
                        { "PHI_BACKEND", "postgresql" },
                };
                /* Once per outage (s->down, and one connection of the
                 * daemon's): a login storm must not become a journal storm. */
                if (!atomic_exchange(&outage_journaled, true))
                        phi_journal_event(PHI_EVENT_STORE_UNREACHABLE, LOG_ERR, fields, PHI_ELEMENTSOF(fields),
                                          "the PostgreSQL store at %s is unreachable (%s): %s", s->where, what, why);
                else
                        phi_log(LOG_ERR, "the PostgreSQL store at %s is unreachable (%s): %s", s->where, what, why);
        }
}

static int sqlstate_error(const char *state) {
        if (!state || strlen(state) != 5)
                return -EIO;
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
                return -EAGAIN;
        if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
                return -ECONNRESET;
        if (strncmp(state, "23", 2) == 0)
                return -EEXIST;         /* as SQLite's SQLITE_CONSTRAINT */
        if (strcmp(state, "42501") == 0 || strcmp(state, "28000") == 0 || strcmp(state, "28P01") == 0)
                return -EACCES;
        if (strcmp(state, "53100") == 0)
                return -ENOSPC;
        if (strcmp(state, "53200") == 0)
                return -ENOMEM;
        if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
                return -EBUSY;          /* lock or statement timeout */
        if (strcmp(state, "XX001") == 0 || strcmp(state, "XX002") == 0)
                return -EUCLEAN;
        return -EIO;
}

static int result_error(struct pg *s, const PGresult *res) {
        if (conn_lost(s)) {
                note_down(s, "connection lost");
                return -ECONNRESET;
        }
        if (!res)
                return -ENOMEM;
        return sqlstate_error(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

/* Statements outside the prepared set (migrations, SET): simple protocol. */
static int exec_simple(struct pg *s, const char *sql) {
        PGresult *res = PQexec(s->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        int r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : result_error(s, res);

        PQclear(res);
        return r;
}

/* Runs a prepared statement (preparing it first on this connection). *ret
 * gets the result of a query (PGRES_TUPLES_OK), else it is cleared here. */
static int run(struct pg *s, int which, const struct params *p, PGresult **ret) {
        PGresult *res;
        ExecStatusType st;
        char name[8];
        int r;

        if (p && p->bad)
                return -ERANGE;
        if (conn_lost(s))
                return -ECONNRESET;
        snprintf(name, sizeof(name), "s%d", which);
        if (!s->prepared[which]) {
                res = PQprepare(s->conn, name, statements[which], 0, NULL);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        r = result_error(s, res);
                        PQclear(res);
                        return r;
                }
                PQclear(res);
                s->prepared[which] = true;
        }
        res = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL, 0);
        st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                r = result_error(s, res);
                PQclear(res);
                return r;
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

/* Rows a statement changed. */
static int run_count(struct pg *s, int which, const struct params *p, uint64_t *ret_n) {
        PGresult *res = NULL;
        const char *t;
        char *end;
        int r;

        if ((r = run(s, which, p, &res)) < 0)
                return r;
        t = PQcmdTuples(res);
        errno = 0;
        *ret_n = t && *t ? strtoull(t, &end, 10) : 0;
        r = t && *t && (*end || errno) ? -EBADMSG : 0;
        PQclear(res);
        return r;
}

/* ----------------------------------------------------------- columns */

static int col_check(const PGresult *res, int row, int col, unsigned oid) {
        if (row >= PQntuples(res) || col >= PQnfields(res) || PQftype(res, col) != oid ||
            PQfformat(res, col) != 0 || PQgetisnull(res, row, col))
                return -EBADMSG;
        return 0;
}

static int col_u64(const PGresult *res, int row, int col, uint64_t *ret) {
        unsigned oid = col < PQnfields(res) ? PQftype(res, col) : 0;
        const char *t;
        char *end;
        unsigned long long v;

        if (oid != OID_INT8 && oid != OID_INT4 && oid != OID_INT2)
                return -EBADMSG;
        if (col_check(res, row, col, oid) < 0)
                return -EBADMSG;
        t = PQgetvalue(res, row, col);
        /* Never negative: phiaccessd writes none, and a cast would wrap. */
        if (!t || *t < '0' || *t > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(t, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int col_uint(const PGresult *res, int row, int col, unsigned *ret) {
        uint64_t v;
        int r = col_u64(res, row, col, &v);

        if (r < 0 || v > UINT32_MAX)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

/* A text column into dst of size bytes: one that does not fit was not
 * written by phiaccessd and is refused, not cut. */
static int col_text(const PGresult *res, int row, int col, char *dst, size_t size) {
        size_t n;

        if (col_check(res, row, col, OID_TEXT) < 0)
                return -EBADMSG;
        n = (size_t) PQgetlength(res, row, col);
        if (n >= size)
                return -EBADMSG;
        memcpy(dst, PQgetvalue(res, row, col), n);
        dst[n] = '\0';
        return 0;
}

static int col_dup(const PGresult *res, int row, int col, size_t max, char **ret) {
        size_t n;
        char *v;

        if (col_check(res, row, col, OID_TEXT) < 0 || (n = (size_t) PQgetlength(res, row, col)) > max)
                return -EBADMSG;
        v = strndup(PQgetvalue(res, row, col), n);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* BYTEA in text form is "\x" and hex digits (bytea_output = hex, set at
 * connect); anything else is refused. */
static int col_bytes(const PGresult *res, int row, int col, uint8_t *dst, size_t cap, size_t *ret_len) {
        const char *t;
        size_t n;

        if (col_check(res, row, col, OID_BYTEA) < 0)
                return -EBADMSG;
        t = PQgetvalue(res, row, col);
        n = (size_t) PQgetlength(res, row, col);
        if (n < 2 || t[0] != '\\' || t[1] != 'x' || (n - 2) % 2 != 0 || (n - 2) / 2 > cap)
                return -EBADMSG;
        for (size_t i = 0; i < (n - 2) / 2; i++) {
                int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                dst[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_len = (n - 2) / 2;
        return 0;
}

/* ------------------------------------------------------ connection, schema */

static int pg_version_read(struct pg *s, unsigned *ret) {
        PGresult *res = NULL;
        uint64_t v;
        int r;

        if ((r = run(s, S_VERSION, NULL, &res)) < 0)
                return r;
        if (PQntuples(res) != 1 || col_u64(res, 0, 0, &v) < 0 || v > UINT32_MAX)
                r = -EBADMSG;
        else
                *ret = (unsigned) v;
        PQclear(res);
        return r;
}

/* Whether schema_migrations exists, read without any DDL (a daemon role may
 * lack the right to create). */
static int schema_exists(struct pg *s, bool *ret) {
        PGresult *res = PQexec(s->conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
        int r = 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                r = result_error(s, res);
        else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
                r = -EBADMSG;
        else
                *ret = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        return r;
}

static unsigned latest(void) { return migrations[PHI_ELEMENTSOF(migrations) - 1].version; }

/*
 * Applies the migrations this database lacks, each in its own transaction
 * that first takes one advisory lock: two daemons (or a daemon and
 * --init-store) starting at once apply each migration once, the second
 * finding it recorded when its turn comes. A schema already current needs no
 * right beyond SELECT on schema_migrations.
 */
static int pg_migrate(struct pg *s) {
        static const char *const create =
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)";
        unsigned have = 0;
        bool exists = false;
        char lock[96];
        int r;

        if ((r = schema_exists(s, &exists)) < 0)
                return r;
        if (exists && (r = pg_version_read(s, &have)) < 0)
                return r;
        if (have > latest())
                return -EPROTONOSUPPORT;
        if (exists && have == latest())
                return 0;
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)", (long long) MIGRATION_LOCK);
        for (size_t i = 0; i < PHI_ELEMENTSOF(migrations); i++) {
                const struct pg_migration *m = &migrations[i];
                char version[16], applied[24];
                const char *values[3] = { version, m->name, applied };
                PGresult *res;

                if (m->version <= have)
                        continue;
                snprintf(version, sizeof(version), "%u", m->version);
                snprintf(applied, sizeof(applied), "%lld", (long long) time(NULL));
                if ((r = exec_simple(s, "BEGIN")) < 0)
                        return r;
                if ((r = exec_simple(s, lock)) < 0 || (r = exec_simple(s, create)) < 0 ||
                    (r = pg_version_read(s, &have)) < 0)
                        goto fail;
                if (have > latest()) {
                        r = -EPROTONOSUPPORT;
                        goto fail;
                }
                if (m->version <= have) {
                        (void) exec_simple(s, "ROLLBACK");
                        continue;
                }
                if ((r = exec_simple(s, m->sql)) < 0)
                        goto fail;
                res = PQexecParams(s->conn,
                                   "INSERT INTO schema_migrations (version, name, applied)"
                                   " VALUES ($1::integer, $2, $3::bigint)",
                                   3, NULL, values, NULL, NULL, 0);
                r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : result_error(s, res);
                PQclear(res);
                if (r < 0)
                        goto fail;
                res = PQexec(s->conn, "COMMIT");
                r = PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0
                            ? 0
                            : result_error(s, res);
                PQclear(res);
                if (r < 0)
                        return r == 0 ? -EIO : r;
                have = m->version;
        }
        return 0;
fail:
        (void) exec_simple(s, "ROLLBACK");
        return r;
}

/* What every new (or reset) connection is set to: the durability the
 * configuration asks for, and the output forms the column readers expect. */
static int session_setup(struct pg *s) {
        PGresult *res;
        const char *values[1] = { s->synchronous_commit };
        int r;

        memset(s->prepared, 0, sizeof(s->prepared));
        s->in_tx = false;
        if ((r = exec_simple(s, "SET bytea_output = 'hex'")) < 0)
                return r;
        /* set_config() binds the value: never an SQL string built from config. */
        res = PQexecParams(s->conn, "SELECT set_config('synchronous_commit', $1, false)", 1, NULL, values, NULL, NULL,
                           0);
        r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : result_error(s, res);
        PQclear(res);
        return r;
}

/* What the connection is, not what the string said: a Unix socket (no
 * server address), or TLS with the certificate checked (sslmode in effect
 * verify-ca or verify-full). Anything else is refused even though the
 * configuration check passed: PGHOST, PGSSLMODE or a service file could
 * have changed what libpq did. */
static bool transport_safe(PGconn *c) {
        const char *h = PQhost(c), *a = PQhostaddr(c), *mode = NULL;
        PQconninfoOption *o;
        bool ok;

        if ((!a || !*a) && h && (h[0] == '/' || h[0] == '@'))
                return true;
        if (!PQsslInUse(c) || !(o = PQconninfo(c)))
                return false;
        for (PQconninfoOption *i = o; i->keyword; i++)
                if (strcmp(i->keyword, "sslmode") == 0)
                        mode = i->val;
        ok = mode && (strcmp(mode, "verify-full") == 0 || strcmp(mode, "verify-ca") == 0);
        PQconninfoFree(o);
        return ok;
}

/* libpq prints notices ("relation ... already exists, skipping") on
 * stderr by default; nothing in them is for an operator. */
static void notice_ignore(void *arg, const char *message) { (void) arg, (void) message; }

static int connect_db(struct pg *s) {
        /* connect_timeout first: the string's own value, later in the
         * array, overrides it (expand_dbname). A dead host must not hold the
         * verifier for libpq's default of forever. */
        const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
        const char *const values[] = { "10", "phiaccessd", s->conninfo, NULL };

        if (s->conn)
                PQfinish(s->conn);
        s->conn = PQconnectdbParams(keys, values, 1);
        if (!s->conn)
                return -ENOMEM;
        (void) PQsetNoticeProcessor(s->conn, notice_ignore, NULL);
        if (PQstatus(s->conn) != CONNECTION_OK) {
                note_down(s, "cannot connect");
                return -ECONNRESET;
        }
        if (!transport_safe(s->conn)) {
                phi_log(LOG_ERR, "the PostgreSQL store at %s was reached over TCP without a checked "
                                 "certificate; refused (sslmode=verify-full or verify-ca is required)",
                        s->where);
                PQfinish(PHI_TAKE_PTR(s->conn));
                return -EPROTO;
        }
        return session_setup(s);
}

/* A connection found broken is reset once, here, before a transaction:
 * never inside one, whose earlier statements the server has forgotten. */
static int ensure_connected(struct pg *s) {
        int r;

        if (!conn_lost(s))
                return 0;
        if (!s->conn)
                r = connect_db(s);
        else {
                PQreset(s->conn);
                r = PQstatus(s->conn) == CONNECTION_OK ? transport_safe(s->conn) ? session_setup(s) : -EPROTO
                                                       : -ECONNRESET;
        }
        if (r < 0) {
                note_down(s, "reconnect failed");
                return r;
        }
        if (s->down) {
                s->down = false;
                const struct phi_journal_field fields[] = {
                        { "PHI_STORE", s->where },
                        { "PHI_BACKEND", "postgresql" },
                };
                if (atomic_exchange(&outage_journaled, false))
                        phi_journal_event(PHI_EVENT_STORE_RECOVERED, LOG_NOTICE, fields, PHI_ELEMENTSOF(fields),
                                          "the PostgreSQL store at %s is reachable again", s->where);
                else
                        phi_log(LOG_NOTICE, "the PostgreSQL store at %s is reachable again", s->where);
        }
        return 0;
}

static void pg_close(void *b) {
        struct pg *s = b;

        if (!s)
                return;
        if (s->conn)
                PQfinish(s->conn);
        if (s->listen)
                PQfinish(s->listen);
        if (s->listen_epoll >= 0)
                close(s->listen_epoll);
        if (s->listen_timer >= 0)
                close(s->listen_timer);
        phi_secret_free_str(s->conninfo);   /* may hold a password */
        free(s);
}

/* The identity file, made and migrated here as the SQLite backend does, so
 * that a read-only handle finds it. */
static int identities_make(const char *path) {
        struct phi_sqlite_db d = { 0 };
        int r;

        if (!*path || strcmp(path, ":memory:") == 0)
                return 0;
        if ((r = phi_sqlite_open(path, false, NULL, 0, &d)) >= 0)
                r = phi_sqlite_identities_migrate(&d);
        phi_sqlite_close(&d);
        return r;
}

static int pg_open(const struct phi_store_params *p, const char *identities_location, void **ret) {
        struct pg *s = calloc(1, sizeof(*s));
        const char *sc = p->synchronous_commit ? p->synchronous_commit : "on";
        char why[256];
        int r;

        if (!s)
                return -ENOMEM;
        s->listen_epoll = s->listen_timer = s->listen_sock = -1;
        if (phi_pg_conninfo_check(p->location, why, sizeof(why)) < 0) {
                phi_log(LOG_ERR, "the PostgreSQL store's connection string is refused: %s", why);
                r = -EINVAL;
                goto fail;
        }
        /* off would acknowledge logins a crash can take back. */
        if (strcmp(sc, "on") != 0 && strcmp(sc, "remote_write") != 0 && strcmp(sc, "remote_apply") != 0 &&
            strcmp(sc, "local") != 0) {
                r = -EINVAL;
                goto fail;
        }
        snprintf(s->synchronous_commit, sizeof(s->synchronous_commit), "%s", sc);
        phi_pg_conninfo_display(p->location, s->where, sizeof(s->where));
        if (!(s->conninfo = strdup(p->location))) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = connect_db(s)) < 0 || (r = pg_migrate(s)) < 0 || (r = identities_make(identities_location)) < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        pg_close(s);
        return r;
}

/* A server restarted since the last round ended this connection, and libpq
 * learns it only when BEGIN fails: then it is reset and BEGIN sent once
 * more, which is safe (nothing of the transaction has happened), so that
 * the first logins after a restart or a failover are not refused. */
static int pg_begin(void *b) {
        struct pg *s = b;
        int r;

        if ((r = ensure_connected(s)) < 0)
                return r;
        r = run(s, S_BEGIN, NULL, NULL);
        if (r == -ECONNRESET && (r = ensure_connected(s)) == 0)
                r = run(s, S_BEGIN, NULL, NULL);
        if (r < 0)
                return r;
        s->in_tx = true;
        return 0;
}

static int pg_commit(void *b) {
        struct pg *s = b;
        PGresult *res = NULL;
        int r;

        r = run(s, S_COMMIT, NULL, &res);
        s->in_tx = false;
        if (r < 0)
                return r;
        /* A failed transaction's COMMIT is answered ROLLBACK. */
        r = strcmp(PQcmdStatus(res), "COMMIT") == 0 ? 0 : -EIO;
        PQclear(res);
        return r;
}

static void pg_rollback(void *b) {
        struct pg *s = b;

        if (!conn_lost(s))
                (void) run(s, S_ROLLBACK, NULL, NULL);
        s->in_tx = false;
}

static int pg_schema_version(void *b, unsigned *ret) {
        struct pg *s = b;
        int r;

        if (!s->in_tx && (r = ensure_connected(s)) < 0)
                return r;
        return pg_version_read(s, ret);
}

/* Reads outside a transaction reconnect as begin does (the socket thread's
 * handle never begins). */
static int ready(struct pg *s) { return s->in_tx ? 0 : ensure_connected(s); }

/* ------------------------------------------------------------------ TOTP */

/* NULL: legacy (made before identities). */
static int identity_col(const PGresult *res, int row, int col, char out[static PHI_IDENTITY_MAX + 1],
                        bool *ret_legacy) {
        if (col < PQnfields(res) && PQftype(res, col) == OID_TEXT && PQgetisnull(res, row, col)) {
                *ret_legacy = true;
                out[0] = '\0';
                return 0;
        }
        *ret_legacy = false;
        return col_text(res, row, col, out, PHI_IDENTITY_MAX + 1);
}

static int token_read(struct pg *s, int which, const char *user, enum phi_token_state state, struct phi_token *ret) {
        struct phi_token t = { .state = state };
        struct params p = { 0 };
        PGresult *res = NULL;
        char alg[16];
        size_t n_nonce = 0;
        int r;

        p_text(&p, user);
        p_u64(&p, (uint64_t) state);
        if ((r = ready(s)) < 0 || (r = run(s, which, &p, &res)) < 0)
                return r;
        if (PQntuples(res) == 0) {
                r = -ENOENT;
                goto out;
        }
        /* The table's CHECKs hold for rows we wrote; a row edited behind our
         * back is refused rather than handed to the cipher with a wrong length. */
        if (PQntuples(res) != 1 || col_text(res, 0, 0, alg, sizeof(alg)) < 0 ||
            phi_totp_algorithm_from_name(alg, &t.algorithm) < 0 || col_uint(res, 0, 1, &t.digits) < 0 ||
            col_bytes(res, 0, 2, t.nonce, sizeof(t.nonce), &n_nonce) < 0 || n_nonce != PHI_SEAL_NONCE_BYTES ||
            col_bytes(res, 0, 3, t.sealed, sizeof(t.sealed), &t.sealed_len) < 0 ||
            t.sealed_len <= PHI_SEAL_TAG_BYTES || col_u64(res, 0, 4, &t.watermark) < 0 ||
            col_u64(res, 0, 5, &t.created) < 0 || col_u64(res, 0, 6, &t.enrolled) < 0 ||
            identity_col(res, 0, 7, t.identity, &t.legacy) < 0) {
                r = -EBADMSG;
                goto out;
        }
        *ret = t;
out:
        PQclear(res);
        return r;
}

static int pg_token_get(void *b, const char *user, enum phi_token_state state, struct phi_token *ret) {
        return token_read(b, S_TOKEN_GET, user, state, ret);
}

static int pg_token_put(void *b, const char *user, const struct phi_token *t) {
        struct params p = { 0 };
        int r;

        p_text(&p, user);
        p_u64(&p, (uint64_t) t->state);
        p_text(&p, phi_totp_algorithm_name(t->algorithm));
        p_u64(&p, t->digits);
        p_bytes(&p, t->nonce, PHI_SEAL_NONCE_BYTES);
        p_bytes(&p, t->sealed, t->sealed_len);
        p_u64(&p, t->watermark);
        p_u64(&p, t->created);
        p_u64(&p, t->enrolled);
        p_text(&p, t->identity);
        if ((r = ready(b)) < 0)
                return r;
        return run(b, S_TOKEN_PUT, &p, NULL);
}

static int pg_token_advance(void *b, const char *user, enum phi_token_state state, uint64_t step) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_text(&p, user);
        p_u64(&p, (uint64_t) state);
        p_u64(&p, step);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_TOKEN_ADVANCE, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -ESTALE;
}

static int exec_key(struct pg *s, int which, const char *key, uint64_t *ret_n) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_text(&p, key);
        if ((r = ready(s)) < 0 || (r = run_count(s, which, &p, &n)) < 0)
                return r;
        if (ret_n)
                *ret_n = n;
        return 0;
}

static int pg_token_activate(void *b, const char *user, uint64_t now) {
        struct phi_token pending;
        struct params p = { 0 };
        struct pg *s = b;
        int r;

        /* Locked in a transaction: another daemon activating the same
         * token waits, then finds no pending token. */
        if ((r = token_read(s, s->in_tx ? S_TOKEN_GET_LOCK : S_TOKEN_GET, user, PHI_TOKEN_PENDING, &pending)) < 0)
                return r;
        if ((r = exec_key(s, S_TOKEN_ACTIVATE_DROP, user, NULL)) < 0)
                return r;
        p_text(&p, user);
        p_u64(&p, now);
        return run(s, S_TOKEN_ACTIVATE, &p, NULL);
}

static int pg_token_delete(void *b, const char *user, bool *ret_found) {
        uint64_t n = 0;
        int r;

        if ((r = exec_key(b, S_TOKEN_DELETE, user, &n)) < 0 || (r = exec_key(b, S_TICKET_DELETE, user, NULL)) < 0)
                return r;
        if (ret_found)
                *ret_found = n > 0;
        return 0;
}

static int pg_ticket_put(void *b, const char *user, const struct phi_ticket *t) {
        struct params p = { 0 };
        int r;

        p_text(&p, user);
        p_u64(&p, t->expires);
        p_u64(&p, t->created);
        p_text(&p, t->identity);
        if ((r = ready(b)) < 0)
                return r;
        return run(b, S_TICKET_PUT, &p, NULL);
}

static int pg_ticket_get(void *b, const char *user, struct phi_ticket *ret) {
        struct phi_ticket t = { 0 };
        struct params p = { 0 };
        PGresult *res = NULL;
        int r;

        p_text(&p, user);
        if ((r = ready(b)) < 0 || (r = run(b, S_TICKET_GET, &p, &res)) < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else if (PQntuples(res) != 1 || col_u64(res, 0, 0, &t.expires) < 0 || col_u64(res, 0, 1, &t.created) < 0 ||
                 identity_col(res, 0, 2, t.identity, &t.legacy) < 0)
                r = -EBADMSG;
        else
                *ret = t;
        PQclear(res);
        return r;
}

static int pg_ticket_delete(void *b, const char *user) { return exec_key(b, S_TICKET_DELETE, user, NULL); }

static int pg_identity_revoke(void *b, const char *identity, bool *ret_token, bool *ret_ticket) {
        uint64_t tokens = 0, tickets = 0;
        int r;

        if ((r = exec_key(b, S_REVOKE_TOKENS, identity, &tokens)) < 0 ||
            (r = exec_key(b, S_REVOKE_TICKETS, identity, &tickets)) < 0)
                return r;
        *ret_token = tokens > 0;
        *ret_ticket = tickets > 0;
        return 0;
}

static int pg_legacy_users(void *b, char ***ret, size_t *ret_n) {
        PGresult *res = NULL;
        char **v = NULL;
        size_t n = 0;
        int r, rows;

        if ((r = ready(b)) < 0 || (r = run(b, S_LEGACY_USERS, NULL, &res)) < 0)
                return r;
        rows = PQntuples(res);
        if (rows > 0 && !(v = calloc((size_t) rows, sizeof(char *))))
                r = -ENOMEM;
        for (int i = 0; r == 0 && i < rows; i++)
                if ((r = col_dup(res, i, 0, PHI_IDENTITY_MAX, &v[n])) == 0)
                        n++;
        PQclear(res);
        if (r < 0) {
                phi_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int pg_failures_get(void *b, enum phi_failure_kind kind, const char *key, struct phi_failures *ret) {
        struct phi_failures f = { 0 };
        struct params p = { 0 };
        struct pg *s = b;
        PGresult *res = NULL;
        int r;

        p_u64(&p, (uint64_t) kind);
        p_text(&p, key);
        /* In a round the counters are read to be written back: locked, so
         * two daemons counting one user's failures add up. */
        if ((r = ready(s)) < 0 || (r = run(s, s->in_tx ? S_FAILURES_GET_LOCK : S_FAILURES_GET, &p, &res)) < 0)
                return r;
        if (PQntuples(res) > 1 ||
            (PQntuples(res) == 1 && (col_u64(res, 0, 0, &f.count) < 0 || col_u64(res, 0, 1, &f.window_start) < 0 ||
                                     col_u64(res, 0, 2, &f.locked_until) < 0)))
                r = -EBADMSG;
        else
                *ret = f;
        PQclear(res);
        return r;
}

static int pg_failures_put(void *b, enum phi_failure_kind kind, const char *key, const struct phi_failures *f) {
        bool empty = f->count == 0 && f->locked_until == 0;
        struct params p = { 0 };
        int r;

        p_u64(&p, (uint64_t) kind);
        p_text(&p, key);
        if (!empty) {
                p_u64(&p, f->count);
                p_u64(&p, f->window_start);
                p_u64(&p, f->locked_until);
        }
        if ((r = ready(b)) < 0)
                return r;
        return run(b, empty ? S_FAILURES_DELETE : S_FAILURES_PUT, &p, NULL);
}

static int pg_failures_prune(void *b, uint64_t now, uint64_t window) {
        struct params p = { 0 };
        int r;

        p_u64(&p, now);
        p_u64(&p, window);
        if ((r = ready(b)) < 0)
                return r;
        return run(b, S_FAILURES_PRUNE, &p, NULL);
}

/* -------------------------------------------------------------- sessions */

static int pg_session_open(void *b, const struct phi_session *x) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_text(&p, x->id);
        p_text(&p, x->user);
        p_text(&p, x->service);
        p_text(&p, x->rhost);
        p_text(&p, x->tty);
        p_text(&p, x->host);
        p_u64(&p, x->pid);
        p_u64(&p, x->pid_start);
        p_text(&p, x->boot_id);
        p_u64(&p, x->opened);
        p_text(&p, x->request_id);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_SESSION_PUT, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -EEXIST;
}

/* Up to max rows of a statement, each read into an item of item_size by
 * row (which leaves nothing to free: fixed-size items), into one array. */
typedef int row_reader(const PGresult *res, int row, void *item);

static int rows_read(struct pg *s, int which, const struct params *p, size_t max, size_t item_size,
                     row_reader *row, void **ret, size_t *ret_n) {
        PGresult *res = NULL;
        char *v = NULL;
        size_t n = 0;
        int r;

        if ((r = ready(s)) < 0 || (r = run(s, which, p, &res)) < 0)
                return r;
        if ((size_t) PQntuples(res) > max)
                r = -EBADMSG;
        else if (max > 0 && !(v = calloc(max, item_size)))
                r = -ENOMEM;
        for (int i = 0; r == 0 && i < PQntuples(res); i++)
                if ((r = row(res, i, v + n * item_size)) == 0)
                        n++;
        PQclear(res);
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int session_row(const PGresult *res, int row, struct phi_session *x) {
        *x = (struct phi_session){ 0 };
        if (col_text(res, row, 0, x->id, sizeof(x->id)) < 0 || col_text(res, row, 1, x->user, sizeof(x->user)) < 0 ||
            col_text(res, row, 2, x->service, sizeof(x->service)) < 0 ||
            col_text(res, row, 3, x->rhost, sizeof(x->rhost)) < 0 || col_text(res, row, 4, x->tty, sizeof(x->tty)) < 0 ||
            col_text(res, row, 5, x->host, sizeof(x->host)) < 0 || col_u64(res, row, 6, &x->pid) < 0 ||
            col_u64(res, row, 7, &x->pid_start) < 0 || col_text(res, row, 8, x->boot_id, sizeof(x->boot_id)) < 0 ||
            col_u64(res, row, 9, &x->opened) < 0 || col_text(res, row, 10, x->request_id, sizeof(x->request_id)) < 0)
                return -EBADMSG;
        return 0;
}

static int pg_session_close(void *b, const char *id, const char *user, struct phi_session *ret_old) {
        struct phi_session old;
        struct params p = { 0 };
        PGresult *res = NULL;
        int r;

        p_text(&p, id);
        if ((r = ready(b)) < 0 || (r = run(b, S_SESSION_GET_LOCK, &p, &res)) < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else if (PQntuples(res) != 1 || session_row(res, 0, &old) < 0)
                r = -EBADMSG;
        PQclear(res);
        if (r == 0 && user && strcmp(old.user, user) != 0)
                r = -EPERM;
        if (r < 0 || (r = exec_key(b, S_SESSION_DELETE, id, NULL)) < 0)
                return r;
        if (ret_old)
                *ret_old = old;
        return 0;
}

static int session_item(const PGresult *res, int row, void *item) { return session_row(res, row, item); }

static int pg_session_list(void *b, const char *host, const char *after, size_t max, struct phi_session **ret,
                           size_t *ret_n) {
        struct params p = { 0 };

        p_text(&p, after);
        p_u64(&p, max);
        if (host)
                p_text(&p, host);
        return rows_read(b, host ? S_SESSION_LIST_HOST : S_SESSION_LIST, &p, max, sizeof(**ret), session_item,
                         (void **) ret, ret_n);
}

/* ------------------------------------------------------------- elevation */

static int pg_elev_put(void *b, const struct phi_elev_request *x) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_text(&p, x->id);
        p_text(&p, x->requester);
        p_text(&p, x->role);
        p_text(&p, x->grant_group);
        p_text(&p, x->host);
        p_text(&p, x->reason);
        p_text(&p, x->ticket);
        p_u64(&p, (uint64_t) x->state);
        p_u64(&p, x->breakglass ? 1 : 0);
        p_u64(&p, x->duration);
        p_u64(&p, x->start_at);
        p_u64(&p, x->created);
        p_u64(&p, x->pending_until);
        p_u64(&p, x->approvals_needed);
        p_u64(&p, x->approvals);
        p_u64(&p, x->denials);
        p_u64(&p, x->starts);
        p_u64(&p, x->expires);
        p_u64(&p, x->ended);
        p_text(&p, x->ended_by);
        p_text(&p, x->end_reason);
        p_text(&p, x->reviewer);
        p_text(&p, x->review_note);
        p_u64(&p, x->reviewed);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_ELEV_PUT, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -EEXIST;
}

/* $1..$12 of S_ELEV_UPDATE and S_ELEV_TRANSITION: the id and what a
 * transition may change. */
static void elev_mutable_params(struct params *p, const struct phi_elev_request *x) {
        p_text(p, x->id);
        p_u64(p, (uint64_t) x->state);
        p_u64(p, x->approvals);
        p_u64(p, x->denials);
        p_u64(p, x->starts);
        p_u64(p, x->expires);
        p_u64(p, x->ended);
        p_text(p, x->ended_by);
        p_text(p, x->end_reason);
        p_text(p, x->reviewer);
        p_text(p, x->review_note);
        p_u64(p, x->reviewed);
}

static int pg_elev_update(void *b, const struct phi_elev_request *x) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        elev_mutable_params(&p, x);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_ELEV_UPDATE, &p, &n)) < 0)
                return r;
        return n > 0 ? 0 : -ENOENT;
}

static int elev_row(const PGresult *res, int row, struct phi_elev_request *x) {
        uint64_t state = 0, breakglass = 0;

        *x = (struct phi_elev_request){ 0 };
        if (col_text(res, row, 0, x->id, sizeof(x->id)) < 0 ||
            col_text(res, row, 1, x->requester, sizeof(x->requester)) < 0 ||
            col_text(res, row, 2, x->role, sizeof(x->role)) < 0 ||
            col_text(res, row, 3, x->grant_group, sizeof(x->grant_group)) < 0 ||
            col_text(res, row, 4, x->host, sizeof(x->host)) < 0 ||
            col_text(res, row, 5, x->reason, sizeof(x->reason)) < 0 ||
            col_text(res, row, 6, x->ticket, sizeof(x->ticket)) < 0 || col_u64(res, row, 7, &state) < 0 ||
            state >= _PHI_ELEV_STATE_MAX || col_u64(res, row, 8, &breakglass) < 0 ||
            col_u64(res, row, 9, &x->duration) < 0 || col_u64(res, row, 10, &x->start_at) < 0 ||
            col_u64(res, row, 11, &x->created) < 0 || col_u64(res, row, 12, &x->pending_until) < 0 ||
            col_uint(res, row, 13, &x->approvals_needed) < 0 || col_uint(res, row, 14, &x->approvals) < 0 ||
            col_uint(res, row, 15, &x->denials) < 0 || col_u64(res, row, 16, &x->starts) < 0 ||
            col_u64(res, row, 17, &x->expires) < 0 || col_u64(res, row, 18, &x->ended) < 0 ||
            col_text(res, row, 19, x->ended_by, sizeof(x->ended_by)) < 0 ||
            col_text(res, row, 20, x->end_reason, sizeof(x->end_reason)) < 0 ||
            col_text(res, row, 21, x->reviewer, sizeof(x->reviewer)) < 0 ||
            col_text(res, row, 22, x->review_note, sizeof(x->review_note)) < 0 ||
            col_u64(res, row, 23, &x->reviewed) < 0)
                return -EBADMSG;
        x->state = (enum phi_elev_state) state;
        x->breakglass = breakglass != 0;
        return 0;
}

static int pg_elev_get(void *b, const char *id, struct phi_elev_request *ret) {
        struct params p = { 0 };
        struct pg *s = b;
        PGresult *res = NULL;
        int r;

        p_text(&p, id);
        /* In a round a request is read to be changed: locked, so that two
         * daemons deciding one request do it one after the other. */
        if ((r = ready(s)) < 0 || (r = run(s, s->in_tx ? S_ELEV_GET_LOCK : S_ELEV_GET, &p, &res)) < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else if (PQntuples(res) != 1 || elev_row(res, 0, ret) < 0)
                r = -EBADMSG;
        PQclear(res);
        return r;
}

static int pg_elev_decision_add(void *b, const char *id, const char *approver, bool approve, const char *reason,
                                uint64_t when) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_text(&p, id);
        p_text(&p, approver);
        p_u64(&p, approve ? 1 : 0);
        p_text(&p, reason);
        p_u64(&p, when);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_ELEV_DECISION_ADD, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -EEXIST;
}

static int elev_item(const PGresult *res, int row, void *item) { return elev_row(res, row, item); }

static int pg_elev_list(void *b, unsigned state_mask, const char *requester, const char *after, size_t max,
                        struct phi_elev_request **ret, size_t *ret_n) {
        struct params p = { 0 };

        p_u64(&p, state_mask);
        p_text(&p, requester);
        p_text(&p, after);
        p_u64(&p, max);
        return rows_read(b, S_ELEV_LIST, &p, max, sizeof(**ret), elev_item, (void **) ret, ret_n);
}

/* ------------------------------------------------------------- audit log */

static int pg_audit_append(void *b, const struct phi_audit_row *x) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_u64(&p, x->seq);
        p_u64(&p, x->time_us);
        p_text(&p, x->event);
        p_text(&p, x->user);
        p_text(&p, x->actor);
        p_text(&p, x->role);
        p_text(&p, x->request_id);
        p_text(&p, x->host);
        p_text(&p, x->leaf);
        p_text(&p, x->leaf_hash);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_AUDIT_APPEND, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -EEXIST;
}

/* One text value into out; -ENOENT without a row; -EUCLEAN when it does
 * not fit, as the SQLite backend says. */
static int text_get(struct pg *s, int which, const struct params *p, char *out, size_t cap) {
        PGresult *res = NULL;
        int r;

        if ((r = ready(s)) < 0 || (r = run(s, which, p, &res)) < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else if (PQntuples(res) != 1 || col_check(res, 0, 0, OID_TEXT) < 0)
                r = -EBADMSG;
        else if ((size_t) PQgetlength(res, 0, 0) >= cap)
                r = -EUCLEAN;
        else
                snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return r;
}

static int pg_audit_tree_get(void *b, char *hex, size_t cap) { return text_get(b, S_AUDIT_TREE_GET, NULL, hex, cap); }

static int pg_audit_tree_put(void *b, const char *hex) {
        struct params p = { 0 };
        int r;

        p_text(&p, hex);
        if ((r = ready(b)) < 0)
                return r;
        return run(b, S_AUDIT_TREE_PUT, &p, NULL);
}

static int pg_audit_leaf_hash(void *b, uint64_t seq, char hex[65]) {
        struct params p = { 0 };

        p_u64(&p, seq);
        return text_get(b, S_AUDIT_LEAF_HASH, &p, hex, 65);
}

static int pg_audit_rows(void *b, const struct phi_audit_filter *f, uint64_t from, size_t max,
                         struct phi_audit_row **ret, size_t *ret_n) {
        static const struct phi_audit_filter none = { 0 };
        struct phi_audit_row *v = NULL;
        struct params p = { 0 };
        PGresult *res = NULL;
        size_t n = 0;
        int r;

        if (!f)
                f = &none;
        p_u64(&p, from);
        p_text(&p, f->event);
        p_text(&p, f->user);
        p_text(&p, f->actor);
        p_text(&p, f->role);
        p_text(&p, f->request_id);
        p_text(&p, f->host);
        p_u64(&p, f->since_us);
        p_u64(&p, f->until_us);
        p_u64(&p, max);
        if ((r = ready(b)) < 0 || (r = run(b, S_AUDIT_ROWS, &p, &res)) < 0)
                return r;
        if ((size_t) PQntuples(res) > max)
                r = -EBADMSG;
        else if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        for (int i = 0; r == 0 && i < PQntuples(res); i++) {
                struct phi_audit_row *x = &v[n];
                if (col_u64(res, i, 0, &x->seq) < 0 || col_u64(res, i, 1, &x->time_us) < 0 ||
                    col_text(res, i, 2, x->event, sizeof(x->event)) < 0 ||
                    col_text(res, i, 3, x->user, sizeof(x->user)) < 0 ||
                    col_text(res, i, 4, x->actor, sizeof(x->actor)) < 0 ||
                    col_text(res, i, 5, x->role, sizeof(x->role)) < 0 ||
                    col_text(res, i, 6, x->request_id, sizeof(x->request_id)) < 0 ||
                    col_text(res, i, 7, x->host, sizeof(x->host)) < 0 ||
                    col_text(res, i, 9, x->leaf_hash, sizeof(x->leaf_hash)) < 0) {
                        r = -EBADMSG;
                        break;
                }
                if ((r = col_dup(res, i, 8, AUDIT_LEAF_MAX, &x->leaf)) < 0)
                        break;
                n++;
        }
        PQclear(res);
        if (r < 0) {
                phi_audit_rows_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int pg_audit_checkpoint_put(void *b, uint64_t size, const char *note, uint64_t created) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        p_u64(&p, size);
        p_text(&p, note);
        p_u64(&p, created);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_AUDIT_CHECKPOINT_PUT, &p, &n)) < 0)
                return r;
        return n == 1 ? 0 : -EEXIST;
}

static int pg_audit_checkpoints(void *b, uint64_t from_size, size_t max, struct phi_audit_checkpoint_row **ret,
                                size_t *ret_n) {
        struct phi_audit_checkpoint_row *v = NULL;
        struct params p = { 0 };
        PGresult *res = NULL;
        size_t n = 0;
        int r;

        p_u64(&p, from_size);
        p_u64(&p, max);
        if ((r = ready(b)) < 0 || (r = run(b, S_AUDIT_CHECKPOINTS, &p, &res)) < 0)
                return r;
        if ((size_t) PQntuples(res) > max)
                r = -EBADMSG;
        else if (max > 0 && !(v = calloc(max, sizeof(*v))))
                r = -ENOMEM;
        for (int i = 0; r == 0 && i < PQntuples(res); i++) {
                if (col_u64(res, i, 0, &v[n].size) < 0 || col_u64(res, i, 1, &v[n].created) < 0) {
                        r = -EBADMSG;
                        break;
                }
                if ((r = col_dup(res, i, 2, NOTE_MAX, &v[n].note)) < 0)
                        break;
                n++;
        }
        PQclear(res);
        if (r < 0) {
                phi_audit_checkpoint_rows_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------- many daemons, one store */

static int pg_audit_tree_lock(void *b, char *hex, size_t cap) { return text_get(b, S_AUDIT_TREE_LOCK, NULL, hex, cap); }

static int pg_audit_checkpoint_last(void *b, uint64_t *ret_size, uint64_t *ret_created) {
        PGresult *res = NULL;
        int r;

        if ((r = ready(b)) < 0 || (r = run(b, S_AUDIT_CHECKPOINT_LAST, NULL, &res)) < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else if (PQntuples(res) != 1 || col_u64(res, 0, 0, ret_size) < 0 || col_u64(res, 0, 1, ret_created) < 0)
                r = -EBADMSG;
        PQclear(res);
        return r;
}

static int pg_elev_transition(void *b, const struct phi_elev_request *x, const struct phi_elev_request *old) {
        struct params p = { 0 };
        uint64_t n = 0;
        int r;

        elev_mutable_params(&p, x);
        p_u64(&p, (uint64_t) old->state);
        p_u64(&p, old->approvals);
        p_u64(&p, old->denials);
        p_u64(&p, old->reviewed);
        if ((r = ready(b)) < 0 || (r = run_count(b, S_ELEV_TRANSITION, &p, &n)) < 0)
                return r;
        if (n > 0)
                return 0;
        /* None changed: gone, or no longer as read. */
        return pg_elev_get(b, x->id, &(struct phi_elev_request){ 0 }) == -ENOENT ? -ENOENT : -ESTALE;
}

static int pg_change_add(void *b, enum phi_change_kind kind, const char *subject, const char *host,
                         uint64_t created) {
        struct params p = { 0 };
        int r;

        p_u64(&p, (uint64_t) kind);
        p_text(&p, subject);
        p_text(&p, host);
        p_u64(&p, created);
        if ((r = ready(b)) < 0 || (r = run(b, S_CHANGE_ADD, &p, NULL)) < 0)
                return r;
        return run(b, S_CHANGE_NOTIFY, NULL, NULL);
}

static int change_item(const PGresult *res, int row, void *item) {
        struct phi_change *c = item;
        uint64_t kind = 0;

        if (col_u64(res, row, 0, &c->seq) < 0 || col_u64(res, row, 1, &kind) < 0 ||
            col_text(res, row, 2, c->subject, sizeof(c->subject)) < 0 ||
            col_text(res, row, 3, c->host, sizeof(c->host)) < 0 || col_u64(res, row, 4, &c->created) < 0)
                return -EBADMSG;
        c->kind = (enum phi_change_kind) kind;
        return 0;
}

static int pg_changes_after(void *b, uint64_t after, size_t max, struct phi_change **ret, size_t *ret_n) {
        struct params p = { 0 };

        p_u64(&p, after);
        p_u64(&p, max);
        return rows_read(b, S_CHANGES_AFTER, &p, max, sizeof(**ret), change_item, (void **) ret, ret_n);
}

static int pg_changes_max(void *b, uint64_t *ret) {
        PGresult *res = NULL;
        int r;

        if ((r = ready(b)) < 0 || (r = run(b, S_CHANGES_MAX, NULL, &res)) < 0)
                return r;
        if (PQntuples(res) != 1 || col_u64(res, 0, 0, ret) < 0)
                r = -EBADMSG;
        PQclear(res);
        return r;
}

static int pg_changes_prune(void *b, uint64_t before) {
        struct params p = { 0 };
        int r;

        p_u64(&p, before);
        if ((r = ready(b)) < 0)
                return r;
        return run(b, S_CHANGES_PRUNE, &p, NULL);
}

/* ------------------------------------------------------ backup and restore */

static int pg_counts(void *b, struct phi_store_counts *ret) {
        struct phi_store_counts c = { 0 };
        PGresult *res = NULL;
        int r;

        if ((r = ready(b)) < 0 || (r = run(b, S_COUNTS, NULL, &res)) < 0)
                return r;
        if (PQntuples(res) != 1 || col_u64(res, 0, 0, &c.tokens_active) < 0 ||
            col_u64(res, 0, 1, &c.tokens_pending) < 0 || col_u64(res, 0, 2, &c.tickets) < 0 ||
            col_u64(res, 0, 3, &c.failure_counters) < 0)
                r = -EBADMSG;
        PQclear(res);
        if (r == 0 && (r = pg_version_read(b, &c.schema_version)) == 0)
                *ret = c;
        return r;
}

/* A database's copy is the database's business: pg_dump for a consistent
 * logical copy, pg_basebackup and WAL archiving for point-in-time recovery
 * (phiaccessd(8), BACKUP AND RESTORE). */
static int pg_backup(void *b, const char *dest, struct phi_store_counts *ret) {
        (void) b, (void) dest, (void) ret;
        return -EOPNOTSUPP;
}

static int pg_tokens_raise_floor(void *b, uint64_t step, uint64_t *ret_raised) {
        struct params p = { 0 };
        int r;

        p_u64(&p, step);
        if ((r = ready(b)) < 0)
                return r;
        return run_count(b, S_TOKENS_RAISE_FLOOR, &p, ret_raised);
}

static int pg_tickets_clear(void *b, uint64_t *ret_cleared) {
        int r;

        if ((r = ready(b)) < 0)
                return r;
        return run_count(b, S_TICKETS_CLEAR, NULL, ret_cleared);
}

static int pg_probe(void *b, char *where, size_t where_len, bool *ret_reachable) {
        struct pg *s = b;
        unsigned v;

        snprintf(where, where_len, "%s", s->where);
        /* Outside a transaction only (status runs on a handle that never
         * begins); a round trip, so that a server gone since is noticed. */
        *ret_reachable = false;
        if (s->in_tx || ensure_connected(s) < 0)
                return 0;
        /* As begin: a connection a restart ended is reset once. */
        *ret_reachable = pg_version_read(s, &v) == 0 || (ensure_connected(s) == 0 && pg_version_read(s, &v) == 0);
        return 0;
}

/* ------------------------------------------------ the change feed's wake-up */

/* The listening connection given up: its socket out of the set (a dead
 * socket stays readable, and must not spin the reader), a reconnection
 * due after a backoff of 1, 2, 4, 8, then every 10 seconds. */
static void listen_drop(struct pg *s) {
        struct itimerspec t = { 0 };

        if (s->listen_sock >= 0)
                (void) epoll_ctl(s->listen_epoll, EPOLL_CTL_DEL, s->listen_sock, NULL);
        s->listen_sock = -1;
        if (s->listen)
                PQfinish(PHI_TAKE_PTR(s->listen));
        s->listen_backoff_s = s->listen_backoff_s == 0 ? 1 : s->listen_backoff_s >= 5 ? 10 : s->listen_backoff_s * 2;
        t.it_value.tv_sec = s->listen_backoff_s;
        (void) timerfd_settime(s->listen_timer, 0, &t, NULL);
}

static void listen_lost(struct pg *s, const char *what) {
        char why[512];

        error_line(s->listen, why, sizeof(why));
        if (!s->listen_lost)
                phi_log(LOG_WARNING, "change notifications from the PostgreSQL store at %s stopped (%s: %s); "
                                     "polling the change feed meanwhile, and reconnecting",
                        s->where, what, why);
        s->listen_lost = true;
        listen_drop(s);
}

/* Same string, same transport rule as the store's connection; a short
 * connect_timeout, since the reader's thread waits for it. */
static void listen_connect(struct pg *s) {
        const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
        const char *const values[] = { "2", "phiaccessd-listen", s->conninfo, NULL };
        struct epoll_event ev = { .events = EPOLLIN };
        PGresult *res;
        bool ok;

        if (!(s->listen = PQconnectdbParams(keys, values, 1)) || PQstatus(s->listen) != CONNECTION_OK) {
                listen_lost(s, "cannot connect");
                return;
        }
        (void) PQsetNoticeProcessor(s->listen, notice_ignore, NULL);
        if (!transport_safe(s->listen)) {
                listen_lost(s, "reached over TCP without a checked certificate, refused");
                return;
        }
        res = PQexec(s->listen, "LISTEN phi_changes");
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
                listen_lost(s, "LISTEN refused");
                return;
        }
        s->listen_sock = PQsocket(s->listen);
        ev.data.fd = s->listen_sock;
        if (s->listen_sock < 0 || epoll_ctl(s->listen_epoll, EPOLL_CTL_ADD, s->listen_sock, &ev) < 0) {
                s->listen_sock = -1;
                listen_lost(s, "no socket");
                return;
        }
        if (s->listen_lost)
                phi_log(LOG_NOTICE, "change notifications from the PostgreSQL store at %s resumed", s->where);
        s->listen_lost = false;
        s->listen_backoff_s = 0;
}

static int pg_changes_wake_fd(void *b) {
        struct pg *s = b;
        struct epoll_event ev = { .events = EPOLLIN };

        if (s->listen_epoll >= 0)
                return s->listen_epoll;
        if ((s->listen_epoll = epoll_create1(EPOLL_CLOEXEC)) < 0)
                return -errno;
        if ((s->listen_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
                int r = -errno;
                close(s->listen_epoll);
                s->listen_epoll = -1;
                return r;
        }
        ev.data.fd = s->listen_timer;
        if (epoll_ctl(s->listen_epoll, EPOLL_CTL_ADD, s->listen_timer, &ev) < 0) {
                int r = -errno;
                close(PHI_TAKE_FD(s->listen_epoll));
                close(PHI_TAKE_FD(s->listen_timer));
                return r;
        }
        /* A first connection that fails arms the timer: the reader polls
         * meanwhile, and the descriptor stays the same. */
        listen_connect(s);
        return s->listen_epoll;
}

/* What woke the reader consumed: the notifications (their payload is empty,
 * the table says what changed), or the timer, then a new connection. */
static void pg_changes_wake_ack(void *b) {
        struct pg *s = b;
        uint64_t expirations;
        PGnotify *n;

        if (s->listen_epoll < 0)
                return;
        if (read(s->listen_timer, &expirations, sizeof(expirations)) == (ssize_t) sizeof(expirations) && !s->listen)
                listen_connect(s);
        if (!s->listen)
                return;
        if (!PQconsumeInput(s->listen) || PQstatus(s->listen) == CONNECTION_BAD) {
                listen_lost(s, "connection lost");
                return;
        }
        while ((n = PQnotifies(s->listen)))
                PQfreemem(n);
}

const struct phi_store_ops phi_store_pg_ops = {
        .name = "postgresql",
        .open = pg_open,
        .close = pg_close,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .schema_version = pg_schema_version,
        .token_get = pg_token_get,
        .token_put = pg_token_put,
        .token_advance = pg_token_advance,
        .token_activate = pg_token_activate,
        .token_delete = pg_token_delete,
        .ticket_put = pg_ticket_put,
        .ticket_get = pg_ticket_get,
        .ticket_delete = pg_ticket_delete,
        .identity_revoke = pg_identity_revoke,
        .legacy_users = pg_legacy_users,
        .failures_get = pg_failures_get,
        .failures_put = pg_failures_put,
        .failures_prune = pg_failures_prune,
        .session_open = pg_session_open,
        .session_close = pg_session_close,
        .session_list = pg_session_list,
        .elev_put = pg_elev_put,
        .elev_update = pg_elev_update,
        .elev_get = pg_elev_get,
        .elev_decision_add = pg_elev_decision_add,
        .elev_list = pg_elev_list,
        .audit_append = pg_audit_append,
        .audit_tree_get = pg_audit_tree_get,
        .audit_tree_put = pg_audit_tree_put,
        .audit_leaf_hash = pg_audit_leaf_hash,
        .audit_rows = pg_audit_rows,
        .audit_checkpoint_put = pg_audit_checkpoint_put,
        .audit_checkpoints = pg_audit_checkpoints,
        .counts = pg_counts,
        .backup = pg_backup,
        .tokens_raise_floor = pg_tokens_raise_floor,
        .tickets_clear = pg_tickets_clear,
        .probe = pg_probe,
        .audit_tree_lock = pg_audit_tree_lock,
        .audit_checkpoint_last = pg_audit_checkpoint_last,
        .elev_transition = pg_elev_transition,
        .change_add = pg_change_add,
        .changes_after = pg_changes_after,
        .changes_max = pg_changes_max,
        .changes_prune = pg_changes_prune,
        .changes_wake_fd = pg_changes_wake_fd,
        .changes_wake_ack = pg_changes_wake_ack,
};
