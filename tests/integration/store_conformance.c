/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store's shared part, one sequence of calls against whichever backend
 * the command line names, asserting what store.h documents: run on SQLite
 * (integration.store_sqlite) and on PostgreSQL (integration.store_pg), it
 * shows that the two backends agree, error codes included.
 *
 *   store_conformance BACKEND LOCATION IDENTITIES all
 *       the whole sequence on an empty store, then the watermark race: two
 *       handles accepting the same step at once, exactly one wins
 *   store_conformance BACKEND LOCATION IDENTITIES open
 *       opens (creating or migrating); prints "ok N" (the schema version)
 *       or "error NAME" and exits 1
 *   store_conformance BACKEND LOCATION IDENTITIES token-get USER
 *       prints "ok WATERMARK" or "error NAME" for USER's active token
 *
 * IDENTITIES is the identity file ("-": the backend's default beside
 * LOCATION, which is SQLite's). Exit 0 when every check passed.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static unsigned passed, failed;
static struct phi_store_params params;

#define CHECK(cond, ...)                                                  \
        do {                                                              \
                if (cond)                                                 \
                        passed++;                                         \
                else {                                                    \
                        failed++;                                         \
                        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);   \
                        fprintf(stderr, __VA_ARGS__);                     \
                        fputc('\n', stderr);                              \
                }                                                         \
        } while (0)
#define CHECK_RC(expr, want)                                                                               \
        do {                                                                                               \
                int _r = (expr), _w = (want);                                                              \
                CHECK(_r == _w, "%s = %d (%s), expected %d (%s)", #expr, _r, _r ? strerror(-_r) : "ok", _w, \
                      _w ? strerror(-_w) : "ok");                                                          \
        } while (0)
#define CHECK_U64(a, b)                                                                                   \
        do {                                                                                              \
                unsigned long long _a = (a), _b = (b);                                                    \
                CHECK(_a == _b, "%s = %llu, expected %llu", #a, _a, _b);                                  \
        } while (0)
#define CHECK_STR(a, b)                                                                                   \
        do {                                                                                              \
                const char *_a = (a), *_b = (b);                                                          \
                CHECK(strcmp(_a, _b) == 0, "%s = '%s', expected '%s'", #a, _a, _b);                       \
        } while (0)

static const char *errname(int r) {
        switch (r) {
        case 0: return "ok";
        case -ENOENT: return "ENOENT";
        case -EEXIST: return "EEXIST";
        case -ESTALE: return "ESTALE";
        case -EPERM: return "EPERM";
        case -EACCES: return "EACCES";
        case -EBADMSG: return "EBADMSG";
        case -EPROTONOSUPPORT: return "EPROTONOSUPPORT";
        case -ECONNRESET: return "ECONNRESET";
        case -EAGAIN: return "EAGAIN";
        case -EINVAL: return "EINVAL";
        case -EPROTO: return "EPROTO";
        case -EUCLEAN: return "EUCLEAN";
        default: return "other";
        }
}

static phi_store *open_or_die(void) {
        phi_store *s = NULL;
        int r = phi_store_open_params(&params, PHI_IDENTITIES_NONE, &s);

        if (r < 0) {
                fprintf(stderr, "cannot open the store: %s\n", strerror(-r));
                exit(2);
        }
        return s;
}

static struct phi_token token(enum phi_token_state state, uint64_t watermark, const char *identity, uint8_t fill) {
        struct phi_token t = { .state = state, .algorithm = PHI_TOTP_SHA1, .digits = 6, .watermark = watermark,
                               .created = 1000 + fill, .enrolled = state == PHI_TOKEN_ACTIVE ? 2000 : 0 };

        memset(t.nonce, fill, sizeof(t.nonce));
        t.sealed_len = 20 + PHI_SEAL_TAG_BYTES;
        for (size_t i = 0; i < t.sealed_len; i++)
                t.sealed[i] = (uint8_t) (fill + i);
        snprintf(t.identity, sizeof(t.identity), "%s", identity);
        return t;
}

static void tokens(phi_store *s) {
        struct phi_token a = token(PHI_TOKEN_PENDING, 0, "id-alice", 7), b = token(PHI_TOKEN_ACTIVE, 100, "id-bob", 9);
        struct phi_token got;
        bool found;

        CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_PENDING, &got), -ENOENT);
        CHECK_RC(phi_store_token_put(s, "alice", &a), 0);
        CHECK_RC(phi_store_token_put(s, "bob", &b), 0);
        CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_PENDING, &got), 0);
        CHECK(got.state == PHI_TOKEN_PENDING && got.algorithm == PHI_TOTP_SHA1 && got.digits == 6 &&
                      got.watermark == 0 && got.created == a.created && got.enrolled == 0 && !got.legacy,
              "alice's pending token read back differently");
        CHECK(memcmp(got.nonce, a.nonce, sizeof(a.nonce)) == 0 && got.sealed_len == a.sealed_len &&
                      memcmp(got.sealed, a.sealed, a.sealed_len) == 0,
              "alice's sealed seed read back differently");
        CHECK_STR(got.identity, "id-alice");
        CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_ACTIVE, &got), -ENOENT);

        /* The replay rule: only a step above the watermark advances it. */
        CHECK_RC(phi_store_token_advance(s, "bob", PHI_TOKEN_ACTIVE, 100), -ESTALE);
        CHECK_RC(phi_store_token_advance(s, "bob", PHI_TOKEN_ACTIVE, 50), -ESTALE);
        CHECK_RC(phi_store_token_advance(s, "bob", PHI_TOKEN_ACTIVE, 101), 0);
        CHECK_RC(phi_store_token_advance(s, "bob", PHI_TOKEN_ACTIVE, 101), -ESTALE);
        CHECK_RC(phi_store_token_advance(s, "bob", PHI_TOKEN_PENDING, 500), -ESTALE);
        CHECK_RC(phi_store_token_advance(s, "nobody", PHI_TOKEN_ACTIVE, 500), -ESTALE);
        CHECK_RC(phi_store_token_get(s, "bob", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 101);

        /* Activation: the pending token replaces the active one. */
        CHECK_RC(phi_store_token_activate(s, "alice", 3000), 0);
        CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_PENDING, &got), -ENOENT);
        CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.enrolled, 3000);
        CHECK_RC(phi_store_token_activate(s, "alice", 3001), -ENOENT);
        {
                struct phi_token b2 = token(PHI_TOKEN_PENDING, 0, "id-bob", 11);
                CHECK_RC(phi_store_token_put(s, "bob", &b2), 0);
                CHECK_RC(phi_store_token_activate(s, "bob", 3100), 0);
                CHECK_RC(phi_store_token_get(s, "bob", PHI_TOKEN_ACTIVE, &got), 0);
                CHECK_U64(got.watermark, 0);
                CHECK_U64(got.created, b2.created);
        }
        /* Put replaces. */
        {
                struct phi_token a2 = token(PHI_TOKEN_ACTIVE, 77, "id-alice", 13);
                CHECK_RC(phi_store_token_put(s, "alice", &a2), 0);
                CHECK_RC(phi_store_token_get(s, "alice", PHI_TOKEN_ACTIVE, &got), 0);
                CHECK_U64(got.watermark, 77);
                CHECK(got.nonce[0] == 13, "put did not replace alice's token");
        }

        /* Tickets. */
        {
                struct phi_ticket t = { .expires = 5000, .created = 4000 }, tg;
                snprintf(t.identity, sizeof(t.identity), "id-carol");
                CHECK_RC(phi_store_ticket_get(s, "carol", &tg), -ENOENT);
                CHECK_RC(phi_store_ticket_put(s, "carol", &t), 0);
                CHECK_RC(phi_store_ticket_get(s, "carol", &tg), 0);
                CHECK(tg.expires == 5000 && tg.created == 4000 && !tg.legacy, "carol's ticket read back differently");
                CHECK_STR(tg.identity, "id-carol");
                t.expires = 6000;
                CHECK_RC(phi_store_ticket_put(s, "carol", &t), 0);
                CHECK_RC(phi_store_ticket_get(s, "carol", &tg), 0);
                CHECK_U64(tg.expires, 6000);
                CHECK_RC(phi_store_ticket_delete(s, "carol"), 0);
                CHECK_RC(phi_store_ticket_get(s, "carol", &tg), -ENOENT);
                /* token_delete takes the ticket too. */
                snprintf(t.identity, sizeof(t.identity), "id-alice");
                CHECK_RC(phi_store_ticket_put(s, "alice", &t), 0);
        }
        CHECK_RC(phi_store_token_delete(s, "alice", &found), 0);
        CHECK(found, "token_delete found no token of alice");
        CHECK_RC(phi_store_ticket_get(s, "alice", &(struct phi_ticket){ 0 }), -ENOENT);
        CHECK_RC(phi_store_token_delete(s, "alice", &found), 0);
        CHECK(!found, "token_delete found a token of alice twice");

        /* Revocation by identity, whatever the name. */
        {
                bool tok = false, tic = true;
                CHECK_RC(phi_store_identity_revoke(s, "id-bob", &tok, &tic), 0);
                CHECK(tok && !tic, "revoke of id-bob: token %d ticket %d", tok, tic);
                CHECK_RC(phi_store_token_get(s, "bob", PHI_TOKEN_ACTIVE, &got), -ENOENT);
        }
        {
                char **v = NULL;
                size_t n = 99;
                CHECK_RC(phi_store_legacy_users(s, &v, &n), 0);
                CHECK_U64(n, 0);
                phi_strv_free(v, n);
        }
}

static void failures(phi_store *s) {
        struct phi_failures f = { .count = 3, .window_start = 100 }, g = { .count = 9 };
        struct phi_store_counts c;

        CHECK_RC(phi_store_failures_get(s, PHI_FAILURE_USER, "dave", &g), 0);
        CHECK(g.count == 0 && g.window_start == 0 && g.locked_until == 0, "absent counters are not zero");
        CHECK_RC(phi_store_failures_put(s, PHI_FAILURE_USER, "dave", &f), 0);
        CHECK_RC(phi_store_failures_get(s, PHI_FAILURE_USER, "dave", &g), 0);
        CHECK(g.count == 3 && g.window_start == 100, "dave's counters read back differently");
        CHECK_RC(phi_store_failures_get(s, PHI_FAILURE_HOST, "dave", &g), 0);
        CHECK_U64(g.count, 0);
        CHECK_RC(phi_store_failures_put(s, PHI_FAILURE_USER, "dave", &(struct phi_failures){ 0 }), 0);
        CHECK_RC(phi_store_counts_get(s, &c), 0);
        CHECK_U64(c.failure_counters, 0);
        /* Pruned: window and lockout both over. */
        CHECK_RC(phi_store_failures_put(s, PHI_FAILURE_USER, "old",
                                        &(struct phi_failures){ .count = 1, .window_start = 100 }),
                 0);
        CHECK_RC(phi_store_failures_put(s, PHI_FAILURE_USER, "recent",
                                        &(struct phi_failures){ .count = 1, .window_start = 1800 }),
                 0);
        CHECK_RC(phi_store_failures_put(s, PHI_FAILURE_HOST, "locked",
                                        &(struct phi_failures){ .count = 5, .window_start = 100, .locked_until = 5000 }),
                 0);
        CHECK_RC(phi_store_failures_prune(s, 2000, 500), 0);
        CHECK_RC(phi_store_counts_get(s, &c), 0);
        CHECK_U64(c.failure_counters, 2);
        CHECK_RC(phi_store_failures_get(s, PHI_FAILURE_USER, "old", &g), 0);
        CHECK_U64(g.count, 0);
        CHECK_RC(phi_store_failures_get(s, PHI_FAILURE_HOST, "locked", &g), 0);
        CHECK_U64(g.locked_until, 5000);
}

static struct phi_session session(char c, const char *user, const char *host) {
        struct phi_session x = { .pid = 4242, .pid_start = 987654321, .opened = 1700000000 };

        memset(x.id, c, PHI_SESSION_ID_LEN);
        snprintf(x.user, sizeof(x.user), "%s", user);
        snprintf(x.service, sizeof(x.service), "sshd");
        snprintf(x.rhost, sizeof(x.rhost), "192.0.2.1");
        snprintf(x.tty, sizeof(x.tty), "pts/3");
        snprintf(x.host, sizeof(x.host), "%s", host);
        snprintf(x.boot_id, sizeof(x.boot_id), "0123456789abcdef0123456789abcdef0123");
        snprintf(x.request_id, sizeof(x.request_id), c == 'b' ? "00000000000b" : "");
        return x;
}

static void sessions(phi_store *s) {
        struct phi_session a = session('a', "alice", "h1"), b = session('b', "bob", "h2"), c = session('c', "carol", "h1");
        struct phi_session *v = NULL, old;
        size_t n = 0;

        CHECK_RC(phi_store_session_open(s, &a), 0);
        CHECK_RC(phi_store_session_open(s, &c), 0);
        CHECK_RC(phi_store_session_open(s, &b), 0);
        CHECK_RC(phi_store_session_open(s, &a), -EEXIST);
        CHECK_RC(phi_store_session_list(s, NULL, "", 2, &v, &n), 0);
        CHECK(n == 2 && v[0].id[0] == 'a' && v[1].id[0] == 'b', "first page of sessions: %zu", n);
        if (n == 2)
                CHECK(memcmp(&v[1], &b, sizeof(b)) == 0, "bob's session read back differently");
        free(v);
        CHECK_RC(phi_store_session_list(s, NULL, b.id, 2, &v, &n), 0);
        CHECK(n == 1 && v[0].id[0] == 'c', "second page of sessions: %zu", n);
        free(v);
        CHECK_RC(phi_store_session_list(s, "h1", "", 10, &v, &n), 0);
        CHECK(n == 2 && v[0].id[0] == 'a' && v[1].id[0] == 'c', "sessions of h1: %zu", n);
        free(v);
        CHECK_RC(phi_store_session_close(s, a.id, "mallory", &old), -EPERM);
        CHECK_RC(phi_store_session_list(s, NULL, "", 10, &v, &n), 0);
        CHECK_U64(n, 3);
        free(v);
        CHECK_RC(phi_store_session_close(s, a.id, "alice", &old), 0);
        CHECK(memcmp(&old, &a, sizeof(a)) == 0, "the closed session read back differently");
        CHECK_RC(phi_store_session_close(s, a.id, NULL, NULL), -ENOENT);
        CHECK_RC(phi_store_session_close(s, c.id, NULL, NULL), 0);
}

static struct phi_elev_request request(const char *id, const char *requester, enum phi_elev_state state) {
        struct phi_elev_request r = { .state = state, .breakglass = state == PHI_ELEV_ACTIVE, .duration = 3600,
                                      .start_at = 0, .created = 1700000000, .pending_until = 1700003600,
                                      .approvals_needed = 2, .approvals = 0, .denials = 0 };

        snprintf(r.id, sizeof(r.id), "%s", id);
        snprintf(r.requester, sizeof(r.requester), "%s", requester);
        snprintf(r.role, sizeof(r.role), "dba");
        snprintf(r.grant_group, sizeof(r.grant_group), "phi-grant-dba");
        snprintf(r.host, sizeof(r.host), "db1");
        snprintf(r.reason, sizeof(r.reason), "ticket 42: the 'nightly' job — failed");
        snprintf(r.ticket, sizeof(r.ticket), "INC-42");
        return r;
}

static void elevation(phi_store *s) {
        struct phi_elev_request r1 = request("000000000001", "alice", PHI_ELEV_PENDING),
                                r2 = request("000000000002", "alice", PHI_ELEV_ACTIVE),
                                r3 = request("000000000003", "bob", PHI_ELEV_DENIED), got, *v = NULL;
        size_t n = 0;

        CHECK_RC(phi_store_elev_put(s, &r1), 0);
        CHECK_RC(phi_store_elev_put(s, &r3), 0);
        CHECK_RC(phi_store_elev_put(s, &r2), 0);
        CHECK_RC(phi_store_elev_put(s, &r1), -EEXIST);
        CHECK_RC(phi_store_elev_get(s, r1.id, &got), 0);
        CHECK(memcmp(&got, &r1, sizeof(r1)) == 0, "r1 read back differently");
        r1.state = PHI_ELEV_APPROVED;
        r1.approvals = 2;
        r1.starts = 1700000100;
        r1.expires = 1700003700;
        snprintf(r1.reviewer, sizeof(r1.reviewer), "carol");
        CHECK_RC(phi_store_elev_update(s, &r1), 0);
        CHECK_RC(phi_store_elev_get(s, r1.id, &got), 0);
        CHECK(memcmp(&got, &r1, sizeof(r1)) == 0, "r1 read back differently after its update");
        {
                struct phi_elev_request none = request("0000000000ff", "x", PHI_ELEV_PENDING);
                CHECK_RC(phi_store_elev_update(s, &none), -ENOENT);
        }
        CHECK_RC(phi_store_elev_get(s, "0000000000ff", &got), -ENOENT);
        CHECK_RC(phi_store_elev_decision_add(s, r1.id, "carol", true, "fine", 1700000050), 0);
        CHECK_RC(phi_store_elev_decision_add(s, r1.id, "carol", false, "changed my mind", 1700000060), -EEXIST);
        CHECK_RC(phi_store_elev_decision_add(s, r1.id, "dave", true, "", 1700000070), 0);

        CHECK_RC(phi_store_elev_list(s, PHI_ELEV_OPEN_MASK, "", "", 10, &v, &n), 0);
        CHECK(n == 2 && strcmp(v[0].id, r1.id) == 0 && strcmp(v[1].id, r2.id) == 0, "open requests: %zu", n);
        free(v);
        CHECK_RC(phi_store_elev_list(s, PHI_ELEV_MASK(PHI_ELEV_DENIED), "", "", 10, &v, &n), 0);
        CHECK(n == 1 && strcmp(v[0].id, r3.id) == 0, "denied requests: %zu", n);
        free(v);
        CHECK_RC(phi_store_elev_list(s, 0xff, "bob", "", 10, &v, &n), 0);
        CHECK(n == 1 && strcmp(v[0].id, r3.id) == 0, "bob's requests: %zu", n);
        free(v);
        CHECK_RC(phi_store_elev_list(s, 0xff, "", "", 1, &v, &n), 0);
        CHECK(n == 1 && strcmp(v[0].id, r1.id) == 0, "first page of requests: %zu", n);
        free(v);
        CHECK_RC(phi_store_elev_list(s, 0xff, "", r1.id, 10, &v, &n), 0);
        CHECK(n == 2 && strcmp(v[0].id, r2.id) == 0 && strcmp(v[1].id, r3.id) == 0, "second page: %zu", n);
        free(v);
        CHECK_RC(phi_store_elev_list(s, PHI_ELEV_MASK(PHI_ELEV_LAPSED), "", "", 10, &v, &n), 0);
        CHECK_U64(n, 0);
        free(v);
}

static struct phi_audit_row audit_row(uint64_t seq, const char *event, const char *user, uint64_t t) {
        struct phi_audit_row x = { .seq = seq, .time_us = t };
        static char leaves[8][128];

        snprintf(x.event, sizeof(x.event), "%s", event);
        snprintf(x.user, sizeof(x.user), "%s", user);
        snprintf(x.actor, sizeof(x.actor), "%s", seq == 2 ? "root" : user);
        snprintf(x.role, sizeof(x.role), "%s", seq == 3 ? "dba" : "");
        snprintf(x.request_id, sizeof(x.request_id), "%s", seq == 3 ? "000000000001" : "");
        snprintf(x.host, sizeof(x.host), "h%llu", (unsigned long long) (seq % 2));
        snprintf(leaves[seq % 8], sizeof(leaves[0]), "{\"seq\":%llu,\"event\":\"%s\",\"x\":\"ü\\n\"}",
                 (unsigned long long) seq, event);
        x.leaf = leaves[seq % 8];
        for (int i = 0; i < 64; i++)
                x.leaf_hash[i] = "0123456789abcdef"[(seq + (uint64_t) i) % 16];
        return x;
}

static void audit(phi_store *s) {
        struct phi_audit_row a = audit_row(1, "totp_accepted", "alice", 1000),
                             b = audit_row(2, "token_reset", "bob", 2000),
                             c = audit_row(3, "elevation_requested", "alice", 3000), *v = NULL;
        struct phi_audit_checkpoint_row *cp = NULL;
        struct phi_audit_filter f;
        char hex[65], tree[256];
        size_t n = 0;

        /* a fresh store holds the empty tree's row (migration 10), for the round's lock */
        CHECK_RC(phi_store_audit_tree_get(s, tree, sizeof(tree)), 0);
        CHECK_RC(phi_store_audit_append(s, &a), 0);
        CHECK_RC(phi_store_audit_append(s, &b), 0);
        CHECK_RC(phi_store_audit_append(s, &c), 0);
        CHECK_RC(phi_store_audit_append(s, &b), -EEXIST);
        CHECK_RC(phi_store_audit_tree_put(s, "00ab"), 0);
        CHECK_RC(phi_store_audit_tree_put(s, "01cdef"), 0);
        CHECK_RC(phi_store_audit_tree_get(s, tree, sizeof(tree)), 0);
        CHECK_STR(tree, "01cdef");
        CHECK_RC(phi_store_audit_tree_get(s, tree, 4), -EUCLEAN);
        CHECK_RC(phi_store_audit_leaf_hash(s, 2, hex), 0);
        CHECK_STR(hex, b.leaf_hash);
        CHECK_RC(phi_store_audit_leaf_hash(s, 9, hex), -ENOENT);

        CHECK_RC(phi_store_audit_rows(s, NULL, 1, 10, &v, &n), 0);
        CHECK_U64(n, 3);
        if (n == 3) {
                CHECK(v[1].seq == 2 && v[1].time_us == 2000, "row 2 read back differently");
                CHECK_STR(v[1].event, "token_reset");
                CHECK_STR(v[1].actor, "root");
                CHECK_STR(v[1].host, "h0");
                CHECK_STR(v[1].leaf, b.leaf);
                CHECK_STR(v[1].leaf_hash, b.leaf_hash);
                CHECK_STR(v[2].role, "dba");
                CHECK_STR(v[2].request_id, "000000000001");
        }
        phi_audit_rows_free(v, n);
        f = (struct phi_audit_filter){ 0 };
        snprintf(f.user, sizeof(f.user), "alice");
        CHECK_RC(phi_store_audit_rows(s, &f, 1, 10, &v, &n), 0);
        CHECK(n == 2 && v[0].seq == 1 && v[1].seq == 3, "alice's rows: %zu", n);
        phi_audit_rows_free(v, n);
        f = (struct phi_audit_filter){ .since_us = 2000, .until_us = 3000 };
        CHECK_RC(phi_store_audit_rows(s, &f, 1, 10, &v, &n), 0);
        CHECK(n == 1 && v[0].seq == 2, "rows in [2000, 3000): %zu", n);
        phi_audit_rows_free(v, n);
        f = (struct phi_audit_filter){ 0 };
        snprintf(f.request_id, sizeof(f.request_id), "000000000001");
        snprintf(f.host, sizeof(f.host), "h1");
        CHECK_RC(phi_store_audit_rows(s, &f, 1, 10, &v, &n), 0);
        CHECK(n == 1 && v[0].seq == 3, "rows of the request on h1: %zu", n);
        phi_audit_rows_free(v, n);
        f = (struct phi_audit_filter){ 0 };
        snprintf(f.event, sizeof(f.event), "totp_accepted");
        snprintf(f.actor, sizeof(f.actor), "alice");
        CHECK_RC(phi_store_audit_rows(s, &f, 2, 10, &v, &n), 0);
        CHECK_U64(n, 0);
        phi_audit_rows_free(v, n);
        CHECK_RC(phi_store_audit_rows(s, NULL, 2, 1, &v, &n), 0);
        CHECK(n == 1 && v[0].seq == 2, "one row from 2: %zu", n);
        phi_audit_rows_free(v, n);

        CHECK_RC(phi_store_audit_checkpoint_put(s, 2, "note of 2\n— signed", 100), 0);
        CHECK_RC(phi_store_audit_checkpoint_put(s, 3, "note of 3", 101), 0);
        CHECK_RC(phi_store_audit_checkpoint_put(s, 2, "again", 102), -EEXIST);
        CHECK_RC(phi_store_audit_checkpoints(s, 0, 10, &cp, &n), 0);
        CHECK(n == 2 && cp[0].size == 2 && cp[0].created == 100 && strcmp(cp[0].note, "note of 2\n— signed") == 0,
              "checkpoints: %zu", n);
        phi_audit_checkpoint_rows_free(cp, n);
        CHECK_RC(phi_store_audit_checkpoints(s, 3, 10, &cp, &n), 0);
        CHECK(n == 1 && cp[0].size == 3, "checkpoints from 3: %zu", n);
        phi_audit_checkpoint_rows_free(cp, n);
}

static void restore_helpers(phi_store *s) {
        struct phi_token x = token(PHI_TOKEN_ACTIVE, 10, "id-x", 21), y = token(PHI_TOKEN_PENDING, 500, "id-y", 22),
                         z = token(PHI_TOKEN_ACTIVE, 90, "id-z", 23), got;
        struct phi_ticket t = { .expires = 9000, .created = 8000 };
        struct phi_store_counts c;
        uint64_t n = 0;

        CHECK_RC(phi_store_token_put(s, "x", &x), 0);
        CHECK_RC(phi_store_token_put(s, "y", &y), 0);
        CHECK_RC(phi_store_token_put(s, "z", &z), 0);
        CHECK_RC(phi_store_ticket_put(s, "t1", &t), 0);
        CHECK_RC(phi_store_ticket_put(s, "t2", &t), 0);
        CHECK_RC(phi_store_counts_get(s, &c), 0);
        CHECK(c.tokens_active == 2 && c.tokens_pending == 1 && c.tickets == 2 && c.failure_counters == 2,
              "counts: %llu active %llu pending %llu tickets %llu counters", (unsigned long long) c.tokens_active,
              (unsigned long long) c.tokens_pending, (unsigned long long) c.tickets,
              (unsigned long long) c.failure_counters);
        CHECK_U64(c.schema_version, phi_store_sqlite_schema_latest());
        CHECK_RC(phi_store_tokens_raise_floor(s, 100, &n), 0);
        CHECK_U64(n, 2);
        CHECK_RC(phi_store_token_get(s, "x", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 100);
        CHECK_RC(phi_store_token_get(s, "y", PHI_TOKEN_PENDING, &got), 0);
        CHECK_U64(got.watermark, 500);
        CHECK_RC(phi_store_token_advance(s, "x", PHI_TOKEN_ACTIVE, 100), -ESTALE);
        CHECK_RC(phi_store_tickets_clear(s, &n), 0);
        CHECK_U64(n, 2);
        CHECK_RC(phi_store_ticket_get(s, "t1", &t), -ENOENT);
}

static void transactions(phi_store *s) {
        struct phi_token w = token(PHI_TOKEN_ACTIVE, 1, "id-w", 31), got;
        struct phi_audit_row r4 = audit_row(4, "rolled_back", "w", 4000);
        struct phi_session d = session('d', "w", "h1"), e = session('e', "w", "h1"), a = session('b', "bob", "h2");
        phi_store *other = open_or_die();
        char hex[65];

        /* Rollback undoes every kind of write. */
        CHECK_RC(phi_store_begin(s), 0);
        CHECK_RC(phi_store_token_put(s, "w", &w), 0);
        CHECK_RC(phi_store_token_advance(s, "x", PHI_TOKEN_ACTIVE, 200), 0);
        CHECK_RC(phi_store_session_open(s, &d), 0);
        CHECK_RC(phi_store_audit_append(s, &r4), 0);
        {
                struct phi_elev_request r9 = request("000000000009", "w", PHI_ELEV_PENDING);
                CHECK_RC(phi_store_elev_put(s, &r9), 0);
        }
        phi_store_rollback(s);
        CHECK_RC(phi_store_token_get(s, "w", PHI_TOKEN_ACTIVE, &got), -ENOENT);
        CHECK_RC(phi_store_token_get(s, "x", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 100);
        CHECK_RC(phi_store_session_close(s, d.id, NULL, NULL), -ENOENT);
        CHECK_RC(phi_store_audit_leaf_hash(s, 4, hex), -ENOENT);
        CHECK_RC(phi_store_elev_get(s, "000000000009", &(struct phi_elev_request){ 0 }), -ENOENT);

        /* A key taken inside a transaction is -EEXIST, and the transaction
         * goes on (the verifier answers it and commits the rest). */
        CHECK_RC(phi_store_begin(s), 0);
        CHECK_RC(phi_store_session_open(s, &a), -EEXIST);
        CHECK_RC(phi_store_session_open(s, &e), 0);
        CHECK_RC(phi_store_token_advance(s, "x", PHI_TOKEN_ACTIVE, 100), -ESTALE);
        CHECK_RC(phi_store_token_advance(s, "x", PHI_TOKEN_ACTIVE, 150), 0);
        /* Not seen by another handle before the commit ... */
        CHECK_RC(phi_store_token_get(other, "x", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 100);
        CHECK_RC(phi_store_commit(s), 0);
        /* ... and seen after it. */
        CHECK_RC(phi_store_token_get(other, "x", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 150);
        CHECK_RC(phi_store_session_close(other, e.id, "w", NULL), 0);
        phi_store_free(other);
}

/* ------------------------------------------------------------------ race */

struct racer {
        pthread_barrier_t *barrier;
        phi_store *s;
        uint64_t step;
        int result;
};

static void *race_one(void *arg) {
        struct racer *x = arg;
        int r;

        (void) pthread_barrier_wait(x->barrier);
        r = phi_store_begin(x->s);
        if (r == 0) {
                r = phi_store_token_advance(x->s, "racer", PHI_TOKEN_ACTIVE, x->step);
                if (r == 0)
                        r = phi_store_commit(x->s);
                else
                        phi_store_rollback(x->s);
        }
        x->result = r;
        return NULL;
}

/* Two handles accept the same step at once, ROUNDS times: exactly one
 * wins each time, the other is told -ESTALE. Then an overlap made certain:
 * the first holds its uncommitted advance while the second tries. */
#define ROUNDS 50
static void race(void) {
        phi_store *a = open_or_die(), *b = open_or_die();
        struct phi_token t = token(PHI_TOKEN_ACTIVE, 1000, "id-racer", 41), got;
        pthread_barrier_t barrier;
        unsigned wins_a = 0, wins_b = 0, both = 0, neither = 0, other_error = 0;

        CHECK_RC(phi_store_token_put(a, "racer", &t), 0);
        pthread_barrier_init(&barrier, NULL, 2);
        for (uint64_t i = 1; i <= ROUNDS; i++) {
                struct racer x = { &barrier, a, 1000 + i, 1 }, y = { &barrier, b, 1000 + i, 1 };
                pthread_t ta, tb;
                pthread_create(&ta, NULL, race_one, &x);
                pthread_create(&tb, NULL, race_one, &y);
                pthread_join(ta, NULL);
                pthread_join(tb, NULL);
                if (x.result == 0 && y.result == 0)
                        both++;
                else if (x.result == 0 && y.result == -ESTALE)
                        wins_a++;
                else if (y.result == 0 && x.result == -ESTALE)
                        wins_b++;
                else if (x.result == -ESTALE && y.result == -ESTALE)
                        neither++;
                else {
                        other_error++;
                        fprintf(stderr, "race round %llu: %s and %s\n", (unsigned long long) i, errname(x.result),
                                errname(y.result));
                }
        }
        pthread_barrier_destroy(&barrier);
        printf("race: %u rounds, first handle won %u, second %u\n", ROUNDS, wins_a, wins_b);
        CHECK(both == 0, "both handles accepted the same step %u times", both);
        CHECK(neither == 0 && other_error == 0, "%u rounds nobody won, %u failed otherwise", neither, other_error);
        CHECK_U64(wins_a + wins_b, ROUNDS);
        CHECK_RC(phi_store_token_get(a, "racer", PHI_TOKEN_ACTIVE, &got), 0);
        CHECK_U64(got.watermark, 1000 + ROUNDS);

        /* Certain overlap: a's advance is made and not committed when b's
         * transaction runs; b finishes only after a commits, and loses. */
        {
                struct racer y = { NULL, b, 2000, 1 };
                pthread_barrier_t one;
                pthread_t tb;
                CHECK_RC(phi_store_begin(a), 0);
                CHECK_RC(phi_store_token_advance(a, "racer", PHI_TOKEN_ACTIVE, 2000), 0);
                pthread_barrier_init(&one, NULL, 1);
                y.barrier = &one;
                pthread_create(&tb, NULL, race_one, &y);
                usleep(300 * 1000);   /* b is waiting for a's lock by now, or not yet started: either way it loses */
                CHECK_RC(phi_store_commit(a), 0);
                pthread_join(tb, NULL);
                pthread_barrier_destroy(&one);
                CHECK_RC(y.result, -ESTALE);
        }
        phi_store_free(a);
        phi_store_free(b);
}

int main(int argc, char **argv) {
        phi_store *s;
        int r;

        if (argc < 5) {
                fprintf(stderr, "usage: %s BACKEND LOCATION IDENTITIES all|open|token-get USER\n", argv[0]);
                return 2;
        }
        params = (struct phi_store_params){ .backend = argv[1], .location = argv[2],
                                            .identities = strcmp(argv[3], "-") == 0 ? NULL : argv[3] };
        if (strcmp(argv[4], "open") == 0) {
                unsigned v = 0;
                r = phi_store_open_params(&params, PHI_IDENTITIES_NONE, &s);
                if (r == 0) {
                        r = phi_store_schema_version(s, &v);
                        phi_store_free(s);
                }
                if (r < 0)
                        printf("error %s\n", errname(r));
                else
                        printf("ok %u\n", v);
                return r < 0 ? 1 : 0;
        }
        if (strcmp(argv[4], "token-get") == 0 && argc == 6) {
                struct phi_token t;
                s = open_or_die();
                r = phi_store_token_get(s, argv[5], PHI_TOKEN_ACTIVE, &t);
                phi_store_free(s);
                if (r < 0)
                        printf("error %s\n", errname(r));
                else
                        printf("ok %llu\n", (unsigned long long) t.watermark);
                return r < 0 ? 1 : 0;
        }
        if (strcmp(argv[4], "all") != 0) {
                fprintf(stderr, "unknown command %s\n", argv[4]);
                return 2;
        }
        s = open_or_die();
        {
                unsigned v = 0;
                CHECK_RC(phi_store_schema_version(s, &v), 0);
                CHECK_U64(v, phi_store_sqlite_schema_latest());
        }
        tokens(s);
        failures(s);
        sessions(s);
        elevation(s);
        audit(s);
        restore_helpers(s);
        transactions(s);
        phi_store_free(s);
        race();
        printf("%s store conformance: %u checks passed, %u failed\n", params.backend, passed, failed);
        return failed ? 1 : 0;
}
