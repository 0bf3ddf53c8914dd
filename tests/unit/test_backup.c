/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Backup and restore: the header check of a file offered for restore, the
 * replay floor and what it refuses, and the store's backup operations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_check.h"
#include "store.h"
#include "totp.h"

/* A real header: the first page of a database SQLite wrote. */
static void sqlite_header(const char *dir, uint8_t h[PHI_BACKUP_HEADER_SIZE], uint64_t *ret_size) {
        char path[256];
        sqlite3 *db = NULL;
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "%s/h.db", dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (a); INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, h, PHI_BACKUP_HEADER_SIZE), PHI_BACKUP_HEADER_SIZE);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        unlink(path);
        *ret_size = (uint64_t) st.st_size;
}

static void test_header(void **state) {
        char dir[] = "/tmp/phi-test-backup.XXXXXX", why[256];
        uint8_t h[PHI_BACKUP_HEADER_SIZE], bad[PHI_BACKUP_HEADER_SIZE];
        uint64_t size;
        uint32_t page = 0, big = 0;

        (void) state;
        assert_non_null(mkdtemp(dir));
        sqlite_header(dir, h, &size);
        assert_int_equal(phi_backup_header_check(h, sizeof(h), size, &page, why, sizeof(why)), 0);
        assert_true(page >= 512 && size % page == 0);

        /* Not SQLite at all: text, or too short for a header. */
        memset(bad, 'x', sizeof(bad));
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), 4096, NULL, why, sizeof(why)), -EMEDIUMTYPE);
        assert_non_null(strstr(why, "not an SQLite database"));
        assert_int_equal(phi_backup_header_check(h, 99, size, NULL, why, sizeof(why)), -EMEDIUMTYPE);
        assert_int_equal(phi_backup_header_check(h, sizeof(h), 99, NULL, why, sizeof(why)), -EMEDIUMTYPE);

        /* Damaged fields. */
        memcpy(bad, h, sizeof(bad));
        bad[16] = 0x03, bad[17] = 0xe8;   /* 1000: not a power of two */
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), size, NULL, why, sizeof(why)), -EUCLEAN);
        assert_non_null(strstr(why, "page size"));
        bad[16] = 0x01, bad[17] = 0x00;   /* 256: too small */
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), size, NULL, why, sizeof(why)), -EUCLEAN);
        memcpy(bad, h, sizeof(bad));
        bad[18] = 3;
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), size, NULL, why, sizeof(why)), -EUCLEAN);
        memcpy(bad, h, sizeof(bad));
        bad[21] = 65;
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), size, NULL, why, sizeof(why)), -EUCLEAN);

        /* Page size field 1 means 65536. */
        memcpy(bad, h, sizeof(bad));
        bad[16] = 0, bad[17] = 1;
        memset(bad + 28, 0, 4);
        assert_int_equal(phi_backup_header_check(bad, sizeof(bad), 65536, &big, why, sizeof(why)), 0);
        assert_int_equal(big, 65536);

        /* Cut short: not whole pages, or fewer than the header says. */
        assert_int_equal(phi_backup_header_check(h, sizeof(h), size - 1, NULL, why, sizeof(why)), -EUCLEAN);
        assert_non_null(strstr(why, "cut short"));
        assert_int_equal(phi_backup_header_check(h, sizeof(h), size - page, NULL, why, sizeof(why)), -EUCLEAN);
        assert_non_null(strstr(why, "the header says"));
        /* More pages than it says is fine (a WAL store's file before truncation). */
        assert_int_equal(phi_backup_header_check(h, sizeof(h), size + page, NULL, why, sizeof(why)), 0);
        rmdir(dir);
}

/* The floor's promise: at any moment up to the restore, every step the
 * verifier could accept (its step +- window) is at or below the floor, so a
 * code of it is a replay afterwards; the step after the floor is accepted
 * once the clock has reached the next step. */
static void test_floor_refuses_every_earlier_code(void **state) {
        static const uint8_t seed[20] = "12345678901234567890";
        struct phi_totp_params p = { PHI_TOTP_SHA1, 6, 0 };
        const uint64_t restore_at = 1800000017;
        char code[9];
        uint64_t step;

        (void) state;
        assert_int_equal(phi_totp_init(), 0);
        assert_int_equal(phi_backup_floor_step(59, 1), 2);
        assert_int_equal(phi_backup_floor_step(60, 0), 2);
        for (unsigned w = 0; w <= PHI_TOTP_MAX_WINDOW; w += 3) {
                uint64_t floor = phi_backup_floor_step(restore_at, w);
                p.window = w;
                assert_int_equal(floor, phi_totp_step((time_t) restore_at) + w);
                /* Every second of the ten minutes up to the restore. */
                for (uint64_t t = restore_at - 600; t <= restore_at; t++) {
                        uint64_t s = phi_totp_step((time_t) t) + w;   /* the newest step accepted at t */
                        assert_int_equal(phi_totp_generate(seed, sizeof(seed), &p, s, code), 0);
                        assert_int_equal(phi_totp_verify(seed, sizeof(seed), &p, (time_t) t, code, floor, &step),
                                         -EALREADY);
                }
                /* After it: the floor's next step, in the clock's next step. */
                assert_int_equal(phi_totp_generate(seed, sizeof(seed), &p, floor + 1, code), 0);
                assert_int_equal(phi_totp_verify(seed, sizeof(seed), &p,
                                                 (time_t) ((phi_totp_step((time_t) restore_at) + 1) * PHI_TOTP_PERIOD),
                                                 code, floor, &step),
                                 0);
                assert_int_equal(step, floor + 1);
        }
}

static void put_token(phi_store *s, const char *user, enum phi_token_state state, uint64_t watermark) {
        struct phi_token t = { .state = state, .algorithm = PHI_TOTP_SHA1, .digits = 6, .watermark = watermark,
                               .created = 1, .sealed_len = 36 };

        snprintf(t.identity, sizeof(t.identity), "local:%s", user);
        memset(t.sealed, 7, t.sealed_len);
        assert_int_equal(phi_store_token_put(s, user, &t), 0);
}

static uint64_t watermark(phi_store *s, const char *user, enum phi_token_state state) {
        struct phi_token t;

        assert_int_equal(phi_store_token_get(s, user, state, &t), 0);
        return t.watermark;
}

static void test_store_backup_and_floor(void **state) {
        char dir[] = "/tmp/phi-test-backup.XXXXXX", path[256], copy[256], other[256], why[256];
        struct phi_store_counts n = { 0 }, c = { 0 };
        struct phi_ticket ticket = { .expires = 99, .created = 1, .identity = "local:carol" };
        phi_store *s = NULL;
        uint64_t raised = 0, cleared = 0;
        unsigned version = 0;
        sqlite3 *db = NULL;
        struct stat st;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        snprintf(copy, sizeof(copy), "%s/copy.db", dir);
        snprintf(other, sizeof(other), "%s/other.db", dir);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_NONE, &s), 0);
        assert_int_equal(phi_store_begin(s), 0);
        put_token(s, "alice", PHI_TOKEN_ACTIVE, 5);
        put_token(s, "bob", PHI_TOKEN_ACTIVE, 1000);
        put_token(s, "carol", PHI_TOKEN_PENDING, 0);
        assert_int_equal(phi_store_ticket_put(s, "carol", &ticket), 0);
        assert_int_equal(phi_store_failures_put(s, PHI_FAILURE_USER, "mallory",
                                                &(struct phi_failures){ .count = 2, .window_start = 10 }),
                         0);
        assert_int_equal(phi_store_commit(s), 0);

        /* The copy: a file of its own that is a phi store, counted. */
        assert_int_equal(phi_store_backup(s, copy, &n), 0);
        assert_int_equal(n.tokens_active, 2);
        assert_int_equal(n.tokens_pending, 1);
        assert_int_equal(n.tickets, 1);
        assert_int_equal(n.failure_counters, 1);
        assert_int_equal(n.schema_version, phi_store_sqlite_schema_latest());
        assert_int_equal(phi_store_sqlite_file_check(copy, &version, why, sizeof(why)), 0);
        assert_int_equal(version, phi_store_sqlite_schema_latest());
        assert_int_equal(stat(copy, &st), 0);
        assert_int_equal(st.st_size % 512, 0);
        phi_store_free(s);
        s = NULL;

        /* The floor, on the copy opened as a store: raised where lower, never lowered. */
        assert_int_equal(phi_store_open("sqlite", copy, PHI_IDENTITIES_NONE, &s), 0);
        assert_int_equal(phi_store_begin(s), 0);
        assert_int_equal(phi_store_tokens_raise_floor(s, 100, &raised), 0);
        assert_int_equal(phi_store_tickets_clear(s, &cleared), 0);
        assert_int_equal(phi_store_commit(s), 0);
        assert_int_equal(raised, 2);
        assert_int_equal(cleared, 1);
        assert_int_equal(watermark(s, "alice", PHI_TOKEN_ACTIVE), 100);
        assert_int_equal(watermark(s, "bob", PHI_TOKEN_ACTIVE), 1000);
        assert_int_equal(watermark(s, "carol", PHI_TOKEN_PENDING), 100);
        /* Replays stay refused at the store's last line too. */
        assert_int_equal(phi_store_token_advance(s, "alice", PHI_TOKEN_ACTIVE, 100), -ESTALE);
        assert_int_equal(phi_store_token_advance(s, "alice", PHI_TOKEN_ACTIVE, 101), 0);
        assert_int_equal(phi_store_counts_get(s, &c), 0);
        assert_int_equal(c.tickets, 0);
        assert_int_equal(c.tokens_active, 2);
        phi_store_free(s);

        /* Files that are no phi store of this code. */
        assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes (t)", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(phi_store_sqlite_file_check(other, &version, why, sizeof(why)), -EMEDIUMTYPE);
        assert_non_null(strstr(why, "not a phi store"));
        assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 'x', 0)", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(phi_store_sqlite_file_check(copy, &version, why, sizeof(why)), -EPROTONOSUPPORT);
        assert_non_null(strstr(why, "newer"));
        {
                FILE *f = fopen(other, "w");
                assert_non_null(f);
                fputs("hello, not a database\n", f);
                fclose(f);
        }
        assert_int_equal(phi_store_sqlite_file_check(other, &version, why, sizeof(why)), -EUCLEAN);

        unlink(path);
        unlink(copy);
        unlink(other);
        snprintf(other, sizeof(other), "%s/phi-identities.db", dir);
        unlink(other);
        snprintf(other, sizeof(other), "%s/copy-identities.db", dir);
        unlink(other);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header),
                cmocka_unit_test(test_floor_refuses_every_earlier_code),
                cmocka_unit_test(test_store_backup_and_floor),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
