/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The shared part's migrations that SQLite and PostgreSQL both run, text for
 * text: store_sqlite.c and store_pg.c list them under the same numbers, so a
 * schema_version means the same tables on either. Append-only, like the
 * migrations themselves: a text once shipped is never edited. Portable SQL
 * only: BIGINT, TEXT, INTEGER; no AUTOINCREMENT, no WITHOUT ROWID, no
 * column named by a word PostgreSQL reserves (user). Migrations 1 to 4 could
 * not be written so (BLOB, WITHOUT ROWID, a column named user); store_pg.c
 * has its own texts for those. */

/* Whose a token or ticket is (token.h): NULL for those made before,
 * bound by the verifier at its start (it has the master key to
 * re-seal them); '' for one whose name had no identity then. */
#define PHI_STORE_MIGRATION_5 \
        "ALTER TABLE totp_tokens ADD COLUMN identity TEXT;" \
        "ALTER TABLE totp_tickets ADD COLUMN identity TEXT;" \
        "CREATE INDEX totp_tokens_identity ON totp_tokens(identity);" \
        "CREATE INDEX totp_tickets_identity ON totp_tickets(identity);"

/* Open sessions (sessions.h): a row from pam_open_session() to its
 * close. The host column is for a store that several hosts share. */
#define PHI_STORE_MIGRATION_6 \
        "CREATE TABLE sessions (" \
        "  id TEXT PRIMARY KEY, user_name TEXT NOT NULL, service TEXT NOT NULL," \
        "  rhost TEXT NOT NULL, tty TEXT NOT NULL, host TEXT NOT NULL," \
        "  pid BIGINT NOT NULL, pid_start BIGINT NOT NULL, boot_id TEXT NOT NULL," \
        "  opened BIGINT NOT NULL);" \
        "CREATE INDEX sessions_host ON sessions(host, id);"

/* Elevation requests (elevation.h): one row each, its state a number
 * (enum phi_elev_state), kept after it ends: the history auditors ask
 * for. One row per approver's decision, so each decides once. */
#define PHI_STORE_MIGRATION_7 \
        "CREATE TABLE elevation_requests (" \
        "  id TEXT PRIMARY KEY, requester TEXT NOT NULL, role TEXT NOT NULL, grant_group TEXT NOT NULL," \
        "  host TEXT NOT NULL, reason TEXT NOT NULL, ticket TEXT NOT NULL," \
        "  state INTEGER NOT NULL CHECK (state >= 0 AND state < 8), breakglass INTEGER NOT NULL," \
        "  duration BIGINT NOT NULL, start_at BIGINT NOT NULL, created BIGINT NOT NULL," \
        "  pending_until BIGINT NOT NULL, approvals_needed INTEGER NOT NULL, approvals INTEGER NOT NULL," \
        "  denials INTEGER NOT NULL, starts BIGINT NOT NULL, expires BIGINT NOT NULL, ended BIGINT NOT NULL," \
        "  ended_by TEXT NOT NULL, end_reason TEXT NOT NULL, reviewer TEXT NOT NULL," \
        "  review_note TEXT NOT NULL, reviewed BIGINT NOT NULL);" \
        "CREATE INDEX elevation_requests_state ON elevation_requests(state, id);" \
        "CREATE TABLE elevation_decisions (" \
        "  request_id TEXT NOT NULL REFERENCES elevation_requests(id), approver TEXT NOT NULL," \
        "  approve INTEGER NOT NULL, reason TEXT NOT NULL, decided BIGINT NOT NULL," \
        "  PRIMARY KEY (request_id, approver));"

/* The audit log (audit_log.h): the records, the leaves of one Merkle
 * tree, whose right edge is kept in audit_tree; and the signed
 * checkpoints. Rows are never deleted: HIPAA keeps six years. */
#define PHI_STORE_MIGRATION_8 \
        "CREATE TABLE audit_log (" \
        "  seq BIGINT PRIMARY KEY, time_us BIGINT NOT NULL, event TEXT NOT NULL, user_name TEXT NOT NULL," \
        "  actor TEXT NOT NULL, role TEXT NOT NULL, request_id TEXT NOT NULL, host TEXT NOT NULL," \
        "  leaf TEXT NOT NULL, leaf_hash TEXT NOT NULL);" \
        "CREATE INDEX audit_log_user ON audit_log(user_name, seq);" \
        "CREATE INDEX audit_log_actor ON audit_log(actor, seq);" \
        "CREATE INDEX audit_log_request ON audit_log(request_id, seq);" \
        "CREATE INDEX audit_log_time ON audit_log(time_us);" \
        "CREATE TABLE audit_tree (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);" \
        "CREATE TABLE audit_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL, created BIGINT NOT NULL);"

/* A sudo session opened under a grant names its request, so that the
 * daemon ends the session when the grant ends (also after a restart);
 * "" for every other session. */
#define PHI_STORE_MIGRATION_9 \
        "ALTER TABLE sessions ADD COLUMN request_id TEXT NOT NULL DEFAULT '';"

/* The change feed of a store several daemons share: one row per committed
 * change the others react to (a request's transition, a token's change, a
 * session's close), its seq given out in the writing transaction. A day's
 * worth is kept (the newest always); a reader asks for those after the last
 * seq it applied. And the audit tree's row made for an empty log (the saved
 * form of the empty tree), so that a server backend's round always has a row
 * to lock (SELECT ... FOR UPDATE) before it gives out seq 0. */
#define PHI_STORE_MIGRATION_10 \
        "CREATE TABLE changes (seq BIGINT PRIMARY KEY, kind INTEGER NOT NULL, subject TEXT NOT NULL," \
        "  host TEXT NOT NULL, created BIGINT NOT NULL);" \
        "INSERT INTO audit_tree (id, state) SELECT 1, '010000000000000000'" \
        "  WHERE NOT EXISTS (SELECT 1 FROM audit_tree);"
