/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Several writers on one store, as the daemons of a fleet are: two handles on
 * one SQLite file, each with its own audit log writer (its own key), rounds
 * interleaved; the change feed; a transition made from a stale read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_log.h"
#include "audit_verify.h"
#include "store.h"

struct fixture {
        char dir[64];
        char path[96];
        phi_store *s[2];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/phi-fleet.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/phi.db", f->dir);
        for (int i = 0; i < 2; i++)
                assert_int_equal(phi_store_open("sqlite", f->path, PHI_IDENTITIES_NONE, &f->s[i]), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char cmd[128];

        for (int i = 0; i < 2; i++)
                phi_store_free(f->s[i]);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* One round of n records on writer l, as the verifier runs it. */
static void round_of(phi_store *s, phi_audit_log *l, const char *host, unsigned n, uint64_t now) {
        char *note = NULL;

        assert_int_equal(phi_store_begin(s), 0);
        assert_int_equal(phi_audit_log_begin(l), 0);
        for (unsigned i = 0; i < n; i++) {
                struct phi_audit_record rec = {
                        .time_us = now * 1000000 + i, .event = "elevation_requested", .user = "alice", .host = host,
                };
                assert_int_equal(phi_audit_log_append(l, &rec, false), 0);
        }
        assert_int_equal(phi_audit_log_finish(l, now, &note), 0);
        assert_int_equal(phi_store_commit(s), 0);
        if (note)
                phi_audit_log_checkpoint_committed(l, phi_audit_log_size(l), now);
        free(note);
}

static void test_audit_two_writers(void **state) {
        struct fixture *f = *state;
        char key[2][128];
        phi_audit_log *l[2] = { NULL, NULL };
        struct phi_audit_row *rows = NULL;
        struct phi_audit_verify_result res;
        const char *trusted[1];
        size_t n = 0;
        uint64_t total = 0;

        for (int i = 0; i < 2; i++) {
                char name[32];
                snprintf(key[i], sizeof(key[i]), "%s/audit%d.key", f->dir, i);
                snprintf(name, sizeof(name), "host%d/phi-audit", i);
                const struct phi_audit_log_config c = {
                        .key_path = key[i], .key_name = name, .origin = "fleet.example/phi-audit",
                        .checkpoint_records = 4, .checkpoint_interval = 3600,
                };
                assert_int_equal(phi_audit_log_open(f->s[i], &c, &l[i]), 0);
                assert_string_equal(phi_audit_log_origin(l[i]), "fleet.example/phi-audit");
                assert_true(strncmp(phi_audit_log_vkey(l[i]), name, strlen(name)) == 0);
        }
        /* Interleaved rounds: each writer appends where the other left off. */
        for (unsigned k = 0; k < 8; k++) {
                unsigned w = k % 3 == 0 ? 0 : 1;
                round_of(f->s[w], l[w], w ? "host1" : "host0", 1 + k % 4, 1700000000 + k);
                total += 1 + k % 4;
                assert_int_equal(phi_audit_log_size(l[w]), total);
        }
        assert_true(phi_audit_log_adopted(l[0]) > 0);
        assert_true(phi_audit_log_adopted(l[1]) > 0);
        /* One tree: seqs 0 .. total-1, each once, whoever wrote it. */
        assert_int_equal(phi_store_audit_rows(f->s[0], NULL, 0, 1000, &rows, &n), 0);
        assert_int_equal(n, total);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(rows[i].seq, i);
        phi_audit_rows_free(rows, n);

        /* Verified with both keys; the other's checkpoints fail with one. */
        trusted[0] = phi_audit_log_vkey(l[1]);
        const struct phi_audit_verify_input both = {
                .store = f->s[0], .vkey = phi_audit_log_vkey(l[0]), .origin = "fleet.example/phi-audit",
                .trusted = trusted, .n_trusted = 1,
        };
        assert_int_equal(phi_audit_verify_run(&both, &res), 0);
        assert_int_equal(res.outcome, PHI_AUDIT_VERIFY_OK);
        assert_int_equal(res.records, total);
        assert_true(res.checkpoints >= 2);
        assert_string_equal(res.origin, "fleet.example/phi-audit");
        const struct phi_audit_verify_input one = {
                .store = f->s[0], .vkey = phi_audit_log_vkey(l[0]), .origin = "fleet.example/phi-audit",
        };
        assert_int_equal(phi_audit_verify_run(&one, &res), 0);
        assert_int_equal(res.outcome, PHI_AUDIT_VERIFY_SIGNATURE);
        /* The log is the fleet's: named after a key, it is another one. */
        const struct phi_audit_verify_input named = {
                .store = f->s[0], .vkey = phi_audit_log_vkey(l[0]), .trusted = trusted, .n_trusted = 1,
        };
        assert_int_equal(phi_audit_verify_run(&named, &res), 0);
        assert_int_equal(res.outcome, PHI_AUDIT_VERIFY_SIGNATURE);

        for (int i = 0; i < 2; i++)
                phi_audit_log_free(l[i]);
}

static void test_changes(void **state) {
        struct fixture *f = *state;
        struct phi_change *v = NULL;
        char long_subject[PHI_CHANGE_SUBJECT_MAX + 2];
        uint64_t max = 99;
        size_t n = 0;

        assert_int_equal(phi_store_changes_max(f->s[1], &max), 0);
        assert_int_equal(max, 0);
        for (unsigned i = 0; i < 5; i++) {
                phi_store *s = f->s[i % 2];
                char subject[16];
                snprintf(subject, sizeof(subject), "%012x", i);
                assert_int_equal(phi_store_begin(s), 0);
                assert_int_equal(phi_store_change_add(s, i == 3 ? PHI_CHANGE_SESSION : PHI_CHANGE_ELEVATION, subject,
                                                      i % 2 ? "hostb" : "hosta", 1700000000 + i),
                                 0);
                assert_int_equal(phi_store_commit(s), 0);
        }
        assert_int_equal(phi_store_changes_max(f->s[1], &max), 0);
        assert_int_equal(max, 5);
        assert_int_equal(phi_store_changes_after(f->s[1], 2, 10, &v, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(v[i].seq, 3 + i);
        assert_string_equal(v[0].subject, "000000000002");
        assert_string_equal(v[0].host, "hosta");
        assert_int_equal(v[1].kind, PHI_CHANGE_SESSION);
        assert_string_equal(v[1].host, "hostb");
        assert_int_equal(v[2].created, 1700000004);
        free(v);
        assert_int_equal(phi_store_changes_after(f->s[0], 1, 2, &v, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(v[1].seq, 3);
        free(v);
        /* A rolled-back change is no change, and its seq is given again. */
        assert_int_equal(phi_store_begin(f->s[0]), 0);
        assert_int_equal(phi_store_change_add(f->s[0], PHI_CHANGE_TOKEN, "alice", "hosta", 1), 0);
        phi_store_rollback(f->s[0]);
        assert_int_equal(phi_store_changes_max(f->s[1], &max), 0);
        assert_int_equal(max, 5);
        memset(long_subject, 'x', sizeof(long_subject) - 1);
        long_subject[sizeof(long_subject) - 1] = '\0';
        assert_int_equal(phi_store_change_add(f->s[0], PHI_CHANGE_TOKEN, long_subject, "hosta", 1), -ENAMETOOLONG);
        /* Pruning keeps the newest, so the next seq follows it. */
        assert_int_equal(phi_store_changes_prune(f->s[0], UINT32_MAX), 0);
        assert_int_equal(phi_store_changes_after(f->s[0], 0, 10, &v, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(v[0].seq, 5);
        free(v);
        assert_int_equal(phi_store_change_add(f->s[1], PHI_CHANGE_TOKEN, "alice", "hostb", 1), 0);
        assert_int_equal(phi_store_changes_max(f->s[0], &max), 0);
        assert_int_equal(max, 6);
}

static void test_transition_stale(void **state) {
        struct fixture *f = *state;
        struct phi_elev_request r = { .state = PHI_ELEV_ACTIVE, .duration = 60, .created = 100, .starts = 100,
                                      .expires = 160, .approvals_needed = 1, .approvals = 1 },
                                a, b, now;

        snprintf(r.id, sizeof(r.id), "0123456789ab");
        snprintf(r.requester, sizeof(r.requester), "alice");
        snprintf(r.role, sizeof(r.role), "dba");
        snprintf(r.grant_group, sizeof(r.grant_group), "phi-dba");
        snprintf(r.host, sizeof(r.host), "hostb");
        assert_int_equal(phi_store_elev_put(f->s[0], &r), 0);
        /* Both daemons read it active; one revokes, the other's timer then
         * tries to expire what it read. */
        assert_int_equal(phi_store_elev_get(f->s[0], r.id, &a), 0);
        assert_int_equal(phi_store_elev_get(f->s[1], r.id, &b), 0);
        struct phi_elev_request revoked = a, expired = b;
        revoked.state = PHI_ELEV_REVOKED;
        revoked.ended = 120;
        expired.state = PHI_ELEV_EXPIRED;
        expired.ended = 160;
        assert_int_equal(phi_store_elev_transition(f->s[0], &revoked, &a), 0);
        assert_int_equal(phi_store_elev_transition(f->s[1], &expired, &b), -ESTALE);
        assert_int_equal(phi_store_elev_get(f->s[1], r.id, &now), 0);
        assert_int_equal(now.state, PHI_ELEV_REVOKED);
        assert_int_equal(now.ended, 120);
        /* The same transition twice: the second finds it made. */
        assert_int_equal(phi_store_elev_transition(f->s[1], &revoked, &a), -ESTALE);
        /* An approval counted from a stale count is refused too. */
        struct phi_elev_request p = r, p2;
        snprintf(p.id, sizeof(p.id), "0123456789ac");
        p.state = PHI_ELEV_PENDING;
        p.approvals = 0;
        p.approvals_needed = 2;
        assert_int_equal(phi_store_elev_put(f->s[0], &p), 0);
        p2 = p;
        p2.approvals = 1;
        assert_int_equal(phi_store_elev_transition(f->s[0], &p2, &p), 0);
        assert_int_equal(phi_store_elev_transition(f->s[1], &p2, &p), -ESTALE);
        snprintf(p2.id, sizeof(p2.id), "ffffffffffff");
        assert_int_equal(phi_store_elev_transition(f->s[1], &p2, &p), -ENOENT);
}

static void test_checkpoint_last(void **state) {
        struct fixture *f = *state;
        uint64_t size = 0, created = 0;

        assert_int_equal(phi_store_audit_checkpoint_last(f->s[0], &size, &created), -ENOENT);
        assert_int_equal(phi_store_audit_checkpoint_put(f->s[0], 3, "n3", 30), 0);
        assert_int_equal(phi_store_audit_checkpoint_put(f->s[1], 10, "n10", 31), 0);
        assert_int_equal(phi_store_audit_checkpoint_last(f->s[0], &size, &created), 0);
        assert_int_equal(size, 10);
        assert_int_equal(created, 31);
}

static void test_keys_file(void **state) {
        struct fixture *f = *state;
        char path[128], sk[PHI_AUDIT_SKEY_MAX], vk[2][PHI_AUDIT_VKEY_MAX], why[512];
        char *keys[PHI_AUDIT_KEYS_MAX] = { 0 };
        size_t n = 0;
        FILE *fp;

        for (int i = 0; i < 2; i++)
                assert_int_equal(phi_audit_keygen(i ? "hostb/phi-audit" : "hosta/phi-audit", sk, vk[i]), 0);
        snprintf(path, sizeof(path), "%s/fleet.keys", f->dir);
        fp = fopen(path, "we");
        assert_non_null(fp);
        fprintf(fp, "# the clinic's hosts\n%s\n\n  %s\r\n", vk[0], vk[1]);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(phi_audit_keys_file_read(path, keys, &n, why, sizeof(why)), 0);
        assert_int_equal(n, 2);
        assert_string_equal(keys[0], vk[0]);
        assert_string_equal(keys[1], vk[1]);
        for (size_t i = 0; i < n; i++)
                free(keys[i]);

        fp = fopen(path, "ae");
        assert_non_null(fp);
        fprintf(fp, "hostc/phi-audit+deadbeef+AAAA\n");
        assert_int_equal(fclose(fp), 0);
        n = 0;
        assert_int_equal(phi_audit_keys_file_read(path, keys, &n, why, sizeof(why)), -EINVAL);
        assert_int_equal(n, 0);
        char where[160];
        snprintf(where, sizeof(where), "%s:5: not a verifier key", path);
        assert_non_null(strstr(why, where));

        /* Fifteen others at most: the daemon's own key is the sixteenth. */
        fp = fopen(path, "we");
        assert_non_null(fp);
        for (int i = 0; i < PHI_AUDIT_KEYS_MAX; i++)
                fprintf(fp, "%s\n", vk[i % 2]);
        assert_int_equal(fclose(fp), 0);
        n = 0;
        assert_int_equal(phi_audit_keys_file_read(path, keys, &n, why, sizeof(why)), -E2BIG);
        assert_non_null(strstr(why, ":16: "));
        /* A file others may write could gain a key: not trusted. */
        assert_int_equal(chmod(path, 0664), 0);
        n = 0;
        assert_int_equal(phi_audit_keys_file_read(path, keys, &n, why, sizeof(why)), -EPERM);
        assert_non_null(strstr(why, "writable by group or others"));
        snprintf(path, sizeof(path), "%s/none.keys", f->dir);
        assert_int_equal(phi_audit_keys_file_read(path, keys, &n, why, sizeof(why)), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_audit_two_writers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transition_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_last, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keys_file, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
