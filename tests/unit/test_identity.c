/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Nested groups, cycles and duplicates, and the store that keeps them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "identity.h"
#include "store.h"

static void add_user(struct phi_identities *ids, const char *name, uint32_t uid) {
        struct phi_user u = { .uid = uid, .gid = 100 };
        char dn[128], key[64];

        snprintf(dn, sizeof(dn), "uid=%s,ou=people,dc=x", name);
        snprintf(key, sizeof(key), "key-%s", name);
        u.key = strdup(key);
        u.dn = strdup(dn);
        u.name = strdup(name);
        u.gecos = strdup("");
        u.home = strdup("/home/x");
        u.shell = strdup("/bin/sh");
        assert_int_equal(phi_identities_add_user(ids, &u), 0);
}

/* members: "uid:NAME" for memberUid, "dn:GROUPNAME" or "user:NAME" for member DNs. */
static void add_group(struct phi_identities *ids, const char *name, uint32_t gid, const char *const *members) {
        struct phi_group g = { .gid = gid };
        char dn[128], key[64];
        size_t n = 0;

        while (members && members[n])
                n++;
        snprintf(dn, sizeof(dn), "cn=%s,ou=groups,dc=x", name);
        snprintf(key, sizeof(key), "key-%s", name);
        g.key = strdup(key);
        g.dn = strdup(dn);
        g.name = strdup(name);
        g.member_uids = calloc(n + 1, sizeof(char *));
        g.member_dns = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                if (strncmp(members[i], "uid:", 4) == 0)
                        g.member_uids[g.n_member_uids++] = strdup(members[i] + 4);
                else if (strncmp(members[i], "dn:", 3) == 0) {
                        snprintf(dn, sizeof(dn), "cn=%s,ou=groups,dc=x", members[i] + 3);
                        g.member_dns[g.n_member_dns++] = strdup(dn);
                } else {
                        snprintf(dn, sizeof(dn), "uid=%s,ou=people,dc=x", members[i] + 5);
                        g.member_dns[g.n_member_dns++] = strdup(dn);
                }
        }
        assert_int_equal(phi_identities_add_group(ids, &g), 0);
}

static bool member(const struct phi_resolved *r, size_t g, const char *name) {
        for (size_t i = 0; i < r->groups[g].n; i++)
                if (strcmp(r->groups[g].names[i], name) == 0)
                        return true;
        return false;
}

static void build(struct phi_identities *ids) {
        add_user(ids, "alice", 10001);
        add_user(ids, "bob", 10002);
        add_user(ids, "carol", 10003);
        add_group(ids, "base", 20001, (const char *const[]){ "uid:alice", "uid:localonly", NULL });
        add_group(ids, "mid", 20002, (const char *const[]){ "dn:base", "user:bob", NULL });
        add_group(ids, "top", 20003, (const char *const[]){ "dn:mid", NULL });
        add_group(ids, "cyc1", 20004, (const char *const[]){ "dn:cyc2", "user:carol", NULL });
        add_group(ids, "cyc2", 20005, (const char *const[]){ "dn:cyc1", "uid:bob", "uid:bob", NULL });
}

static void test_nesting_and_cycles(void **state) {
        struct phi_identities ids = { 0 };
        struct phi_resolved r = { 0 };

        (void) state;
        build(&ids);
        assert_int_equal(phi_identities_resolve(&ids, PHI_RESOLVE_MEMBER_UID | PHI_RESOLVE_MEMBER_DN, &r), 0);
        assert_true(member(&r, 0, "alice"));
        assert_true(member(&r, 0, "localonly"));       /* memberUid may name a local user */
        assert_true(member(&r, 2, "alice"));           /* two levels down */
        assert_true(member(&r, 2, "bob"));
        assert_int_equal(r.groups[2].n, 3);
        assert_true(member(&r, 3, "bob") && member(&r, 3, "carol"));
        assert_true(member(&r, 4, "carol"));           /* through the cycle */
        assert_int_equal(r.groups[4].n, 2);            /* bob listed twice counts once */
        assert_true(r.n_cycles >= 1);
        assert_non_null(strstr(r.cycle_example, "cyc"));
        phi_resolved_clear(&r);

        /* memberUid only: nesting through member DNs does not count. */
        assert_int_equal(phi_identities_resolve(&ids, PHI_RESOLVE_MEMBER_UID, &r), 0);
        assert_false(member(&r, 2, "alice"));
        phi_resolved_clear(&r);
        phi_identities_clear(&ids);
}

static void test_dedup(void **state) {
        struct phi_identities ids = { 0 };
        char example[128];

        (void) state;
        add_user(&ids, "alice", 10001);
        add_user(&ids, "mallory", 10001);    /* same uid as alice */
        add_group(&ids, "g", 20001, NULL);
        add_group(&ids, "h", 20001, NULL);   /* same gid */
        assert_int_equal(phi_identities_dedup(&ids, example, sizeof(example)), 2);
        assert_int_equal(ids.n_users, 1);
        assert_string_equal(ids.users[0].name, "alice");
        assert_int_equal(ids.n_groups, 1);
        assert_string_equal(ids.groups[0].name, "g");
        phi_identities_clear(&ids);
}

static void test_store_roundtrip(void **state) {
        char dir[] = "/tmp/phi-test-store.XXXXXX", path[256];
        struct phi_identities ids = { 0 }, loaded = { 0 };
        struct phi_resolved r = { 0 };
        struct phi_sync_state st = { 0 };
        struct phi_user u = { 0 };
        phi_store *s = NULL;
        uint64_t users, groups;
        unsigned version;
        char **v = NULL;
        size_t n = 0, n_users = 0;
        bool found;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &s), 0);
        assert_int_equal(phi_store_schema_version(s, &version), 0);
        assert_true(version >= 1);
        build(&ids);
        assert_int_equal(phi_store_identities_begin(s), 0);
        for (size_t i = 0; i < ids.n_users; i++)
                assert_int_equal(phi_store_user_put(s, &ids.users[i]), 0);
        for (size_t i = 0; i < ids.n_groups; i++)
                assert_int_equal(phi_store_group_put(s, &ids.groups[i]), 0);
        assert_int_equal(phi_store_identities_commit(s), 0);

        /* Another key with alice's uid is refused, and changes nothing. */
        {
                struct phi_user dup;
                assert_int_equal(phi_user_copy(&ids.users[1], &dup), 0);
                free(dup.key);
                dup.key = strdup("key-other");
                dup.uid = 10001;
                assert_int_equal(phi_store_user_put(s, &dup), -EEXIST);
                phi_user_clear(&dup);
        }
        assert_int_equal(phi_store_identities_load(s, &loaded), 0);
        assert_int_equal(loaded.n_users, 3);
        assert_int_equal(loaded.n_groups, 5);
        assert_int_equal(phi_identities_resolve(&loaded, PHI_RESOLVE_MEMBER_UID | PHI_RESOLVE_MEMBER_DN, &r), 0);
        assert_int_equal(phi_store_memberships_replace(s, &loaded, &r), 0);
        assert_int_equal(phi_store_user_groups(s, "alice", &v, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0], "base");
        assert_string_equal(v[2], "top");
        phi_strv_free(v, n);

        /* Rename by key: same entry, new name. */
        free(ids.users[0].name);
        ids.users[0].name = strdup("alice2");
        assert_int_equal(phi_store_user_put(s, &ids.users[0]), 0);
        assert_int_equal(phi_store_user_get(s, "alice", &u), -ENOENT);
        assert_int_equal(phi_store_user_get(s, "alice2", &u), 0);
        assert_int_equal(u.uid, 10001);
        phi_user_clear(&u);
        assert_int_equal(phi_store_user_get_by_uid(s, 10002, &u), 0);
        assert_string_equal(u.name, "bob");
        phi_user_clear(&u);

        assert_int_equal(phi_store_entry_delete(s, "key-bob", &found), 0);
        assert_true(found);
        assert_int_equal(phi_store_entry_delete(s, "key-nobody", &found), 0);
        assert_false(found);
        assert_int_equal(phi_store_counts(s, &users, &groups), 0);
        assert_int_equal(users, 2);
        assert_int_equal(groups, 5);
        assert_int_equal(phi_store_keys_load(s, &v, &n, &n_users), 0);
        assert_int_equal(n, 7);
        assert_int_equal(n_users, 2);
        phi_strv_free(v, n);

        st.cookie = (uint8_t *) strdup("rid=000,csn=1");
        st.cookie_len = 13;
        st.generation = 7;
        assert_int_equal(phi_store_sync_state_put(s, &st), 0);
        free(st.cookie);
        st = (struct phi_sync_state){ 0 };
        phi_store_free(s);

        /* Reopening runs no migration twice and keeps the state. */
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &s), 0);
        assert_int_equal(phi_store_sync_state_get(s, &st), 0);
        assert_int_equal(st.cookie_len, 13);
        assert_memory_equal(st.cookie, "rid=000,csn=1", 13);
        assert_int_equal(st.generation, 7);
        phi_sync_state_clear(&st);
        assert_int_equal(phi_store_open("postgres", path, PHI_IDENTITIES_WRITE, &(phi_store *){ NULL }), -EOPNOTSUPP);
        phi_store_free(s);
        phi_resolved_clear(&r);
        phi_identities_clear(&loaded);
        phi_identities_clear(&ids);
        {
                char cmd[512];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
                assert_int_equal(system(cmd), 0);
        }
}

/* A user's groups include the directory group of their primary gid even
 * when it does not list them (rfc2307 directories seldom do): the host gives
 * it to them, so a policy rule naming it must match them. */
static void test_store_primary_group(void **state) {
        char dir[] = "/tmp/phi-test-store.XXXXXX", path[256];
        struct phi_identities ids = { 0 }, loaded = { 0 };
        struct phi_resolved r = { 0 };
        phi_store *s = NULL;
        char **v = NULL;
        size_t n = 0;

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &s), 0);
        build(&ids);
        ids.users[2].gid = 20002;   /* carol's primary group: mid, which lists only base and bob */
        ids.users[0].gid = 20001;   /* alice's: base, which lists her too (no duplicate) */
        assert_int_equal(phi_store_identities_begin(s), 0);
        for (size_t i = 0; i < ids.n_users; i++)
                assert_int_equal(phi_store_user_put(s, &ids.users[i]), 0);
        for (size_t i = 0; i < ids.n_groups; i++)
                assert_int_equal(phi_store_group_put(s, &ids.groups[i]), 0);
        assert_int_equal(phi_store_identities_commit(s), 0);
        assert_int_equal(phi_store_identities_load(s, &loaded), 0);
        assert_int_equal(phi_identities_resolve(&loaded, PHI_RESOLVE_MEMBER_UID | PHI_RESOLVE_MEMBER_DN, &r), 0);
        assert_int_equal(phi_store_memberships_replace(s, &loaded, &r), 0);

        assert_int_equal(phi_store_user_groups(s, "carol", &v, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0], "cyc1");
        assert_string_equal(v[1], "cyc2");
        assert_string_equal(v[2], "mid");
        phi_strv_free(v, n);
        assert_int_equal(phi_store_user_groups(s, "alice", &v, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0], "base");
        assert_string_equal(v[1], "mid");
        assert_string_equal(v[2], "top");
        phi_strv_free(v, n);
        /* bob's gid 100 has no group entry: only his memberships (mid, top, cyc1, cyc2). */
        assert_int_equal(phi_store_user_groups(s, "bob", &v, &n), 0);
        assert_int_equal(n, 4);
        phi_strv_free(v, n);
        assert_int_equal(phi_store_user_groups(s, "nobody", &v, &n), 0);
        assert_int_equal(n, 0);
        phi_strv_free(v, n);

        phi_store_free(s);
        phi_resolved_clear(&r);
        phi_identities_clear(&loaded);
        phi_identities_clear(&ids);
        {
                char cmd[512];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
                assert_int_equal(system(cmd), 0);
        }
}

/* The process umask as /proc shows it, without changing it (umask(2) cannot
 * read it without setting it). */
static unsigned read_umask(void) {
        char line[128];
        unsigned m = 07777;
        FILE *f = fopen("/proc/self/status", "re");

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "Umask: %o", &m) == 1)
                        break;
        if (f)
                fclose(f);
        return m;
}

static atomic_bool watching;
static atomic_uint umask_seen;

static void *watch_umask(void *arg) {
        (void) arg;
        while (atomic_load(&watching)) {
                unsigned m = read_umask();
                if (m != 022)
                        atomic_store(&umask_seen, m);
        }
        return NULL;
}

/* The store is opened by several threads of the daemon while others create
 * files (the socket, the snapshot): opening it must not touch the process-wide
 * umask, and still create the database (and its WAL) 0600. */
static void test_store_open_leaves_umask_alone(void **state) {
        char dir[] = "/tmp/phi-test-store.XXXXXX", path[256], cmd[512];
        mode_t old = umask(022);
        pthread_t watcher;
        struct stat st;
        phi_store *s = NULL;

        (void) state;
        assert_non_null(mkdtemp(dir));
        atomic_store(&watching, true);
        atomic_store(&umask_seen, 022);
        assert_int_equal(pthread_create(&watcher, NULL, watch_umask, NULL), 0);
        for (int i = 0; i < 20; i++) {
                snprintf(path, sizeof(path), "%s/phi%d.db", dir, i % 2);
                assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &s), 0);
                assert_int_equal(stat(path, &st), 0);
                assert_int_equal(st.st_mode & 07777, 0600);
                snprintf(path, sizeof(path), "%s/phi%d.db-wal", dir, i % 2);
                assert_int_equal(stat(path, &st), 0);
                assert_int_equal(st.st_mode & 07777, 0600);
                phi_store_free(s);
        }
        atomic_store(&watching, false);
        assert_int_equal(pthread_join(watcher, NULL), 0);
        assert_int_equal(atomic_load(&umask_seen), 022);
        (void) umask(old);
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        assert_int_equal(system(cmd), 0);
}


static void rm_rf(const char *dir) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static void sql(const char *path, const char *text) {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

static long long sql_count(const char *path, const char *query) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long n = -1;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* A store as schema 3 (the shipped migrations 1 to 3) left it, identities in
 * its own tables. */
static void make_v3_store(const char *path) {
        sql(path,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL);"
            "CREATE TABLE users (key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,"
            "  uid INTEGER NOT NULL UNIQUE, gid INTEGER NOT NULL, gecos TEXT NOT NULL,"
            "  home TEXT NOT NULL, shell TEXT NOT NULL, modified INTEGER NOT NULL);"
            "CREATE INDEX users_dn ON users(dn);"
            "CREATE TABLE groups (key TEXT PRIMARY KEY, dn TEXT NOT NULL, name TEXT NOT NULL UNIQUE,"
            "  gid INTEGER NOT NULL UNIQUE, modified INTEGER NOT NULL);"
            "CREATE INDEX groups_dn ON groups(dn);"
            "CREATE TABLE group_members (group_key TEXT NOT NULL REFERENCES groups(key) ON DELETE CASCADE,"
            "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)), value TEXT NOT NULL,"
            "  PRIMARY KEY (group_key, kind, value)) WITHOUT ROWID;"
            "CREATE TABLE memberships (user_name TEXT NOT NULL, group_name TEXT NOT NULL,"
            "  PRIMARY KEY (user_name, group_name)) WITHOUT ROWID;"
            "CREATE TABLE sync_state (id INTEGER PRIMARY KEY CHECK (id = 1), cookie BLOB,"
            "  last_success INTEGER NOT NULL DEFAULT 0, last_full INTEGER NOT NULL DEFAULT 0,"
            "  generation INTEGER NOT NULL DEFAULT 0);"
            "INSERT INTO sync_state (id) VALUES (1);"
            "CREATE TABLE totp_tokens (user TEXT NOT NULL, state INTEGER NOT NULL CHECK (state IN (1, 2)),"
            "  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),"
            "  digits INTEGER NOT NULL CHECK (digits IN (6, 8)),"
            "  nonce BLOB NOT NULL CHECK (length(nonce) = 24), sealed BLOB NOT NULL,"
            "  watermark INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
            "  enrolled INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user, state)) WITHOUT ROWID;"
            "CREATE TABLE totp_tickets (user TEXT PRIMARY KEY, expires INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE auth_failures (kind INTEGER NOT NULL CHECK (kind IN (1, 2)), key TEXT NOT NULL,"
            "  count INTEGER NOT NULL, window_start INTEGER NOT NULL, locked_until INTEGER NOT NULL DEFAULT 0,"
            "  PRIMARY KEY (kind, key)) WITHOUT ROWID;"
            "ALTER TABLE sync_state ADD COLUMN search TEXT NOT NULL DEFAULT '';"
            "INSERT INTO schema_migrations VALUES (1, 'identities', 0), (2, 'totp', 0), (3, 'sync-search', 0);"
            "INSERT INTO users VALUES ('uuid-alice', 'uid=alice,ou=people', 'alice', 10001, 10001, 'Alice', '/home/alice', '/bin/sh', 0);"
            "INSERT INTO users VALUES ('uuid-bob', 'uid=bob,ou=people', 'bob', 10002, 10001, 'Bob', '/home/bob', '/bin/sh', 0);"
            "INSERT INTO groups VALUES ('uuid-staff', 'cn=staff,ou=groups', 'staff', 10001, 0);"
            "INSERT INTO group_members VALUES ('uuid-staff', 1, 'alice');"
            "INSERT INTO memberships VALUES ('alice', 'staff');"
            "UPDATE sync_state SET cookie = X'636f6f6b6965', generation = 9, search = 'the-search' WHERE id = 1;");
}

static void assert_moved(const char *path, const char *ipath) {
        struct phi_sync_state st = { 0 };
        struct phi_user u = { 0 };
        struct stat sb;
        phi_store *s = NULL;
        char **v = NULL;
        size_t n = 0;
        unsigned version = 0;

        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_READ, &s), 0);
        assert_int_equal(phi_store_schema_version(s, &version), 0);
        assert_true(version >= 4);
        assert_int_equal(phi_store_user_get(s, "alice", &u), 0);
        assert_string_equal(u.key, "uuid-alice");
        phi_user_clear(&u);
        assert_int_equal(phi_store_user_groups(s, "alice", &v, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(v[0], "staff");
        phi_strv_free(v, n);
        assert_int_equal(phi_store_sync_state_get(s, &st), 0);
        assert_int_equal(st.cookie_len, 6);
        assert_memory_equal(st.cookie, "cookie", 6);
        assert_int_equal(st.generation, 9);
        assert_string_equal(st.search, "the-search");
        phi_sync_state_clear(&st);
        phi_store_free(s);
        /* Once, and only there: the store keeps none of them. */
        assert_int_equal(sql_count(ipath, "SELECT COUNT(*) FROM users"), 2);
        assert_int_equal(sql_count(path, "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
                                         "('users', 'groups', 'group_members', 'memberships', 'sync_state')"), 0);
        assert_int_equal(stat(ipath, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
}

/* A store from before the identity file: its identities move there at the
 * first open, and a crash between the copy and the drop loses nothing. */
static void test_store_moves_old_identities(void **state) {
        char dir[] = "/tmp/phi-test-store.XXXXXX", path[256], ipath[256];

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        snprintf(ipath, sizeof(ipath), "%s/phi-identities.db", dir);
        make_v3_store(path);
        assert_moved(path, ipath);
        rm_rf(dir);

        /* The crash: the identity file has the copy (and its mark), the store
         * still has its tables. The next open drops them, copying nothing twice. */
        assert_non_null(mkdtemp(strcpy(dir, "/tmp/phi-test-store.XXXXXX")));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        snprintf(ipath, sizeof(ipath), "%s/phi-identities.db", dir);
        make_v3_store(path);
        {
                phi_store *s = NULL;
                assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_READ, &s), 0);
                phi_store_free(s);
        }
        make_v3_store(strcat(strcpy(path, dir), "/again.db"));
        /* again.db is a schema-3 store whose identity file (again-identities.db)
         * is the moved copy: as if the drop had not happened. */
        {
                char cmd[768];
                snprintf(cmd, sizeof(cmd), "cp '%s' '%s/again-identities.db'", ipath, dir);
                assert_int_equal(system(cmd), 0);
        }
        snprintf(ipath, sizeof(ipath), "%s/again-identities.db", dir);
        sql(ipath, "DELETE FROM users WHERE key = 'uuid-bob';");   /* tells a second copy apart */
        {
                phi_store *s = NULL;
                struct phi_user u = { 0 };
                assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_READ, &s), 0);
                assert_int_equal(phi_store_user_get(s, "bob", &u), -ENOENT);
                phi_store_free(s);
        }
        assert_int_equal(sql_count(ipath, "SELECT COUNT(*) FROM users"), 1);
        assert_int_equal(sql_count(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'"), 0);
        rm_rf(dir);
}

/* The directory thread's long transaction on the identities holds no lock a
 * login's commit needs: the shared part begins and commits at once (were they
 * one file, BEGIN IMMEDIATE would wait out the busy timeout, then fail with
 * -EBUSY), and readers of the identities see the last committed data. */
static void test_store_identities_apart(void **state) {
        char dir[] = "/tmp/phi-test-store.XXXXXX", path[256];
        struct phi_identities ids = { 0 };
        phi_store *sync = NULL, *verifier = NULL, *reader = NULL;
        struct phi_user u = { 0 };
        struct phi_token t = { .state = PHI_TOKEN_ACTIVE, .algorithm = PHI_TOTP_SHA1, .digits = 6,
                               .sealed_len = 36 };

        (void) state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/phi.db", dir);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_READ, &reader), 0);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_NONE, &verifier), 0);
        assert_int_equal(phi_store_open("sqlite", path, PHI_IDENTITIES_WRITE, &sync), 0);
        build(&ids);
        assert_int_equal(phi_store_identities_begin(sync), 0);
        for (size_t i = 0; i < ids.n_users; i++)
                assert_int_equal(phi_store_user_put(sync, &ids.users[i]), 0);

        assert_int_equal(phi_store_begin(verifier), 0);
        assert_int_equal(phi_store_token_put(verifier, "alice", &t), 0);
        assert_int_equal(phi_store_commit(verifier), 0);
        assert_int_equal(phi_store_user_get(reader, "alice", &u), -ENOENT);
        /* Neither can the reader or the verifier write identities. */
        assert_int_equal(phi_store_user_put(reader, &ids.users[0]), -EACCES);
        assert_int_equal(phi_store_user_put(verifier, &ids.users[0]), -EBADF);

        assert_int_equal(phi_store_identities_commit(sync), 0);
        assert_int_equal(phi_store_user_get(reader, "alice", &u), 0);
        phi_user_clear(&u);
        phi_store_free(sync);
        phi_store_free(verifier);
        phi_store_free(reader);
        phi_identities_clear(&ids);
        rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nesting_and_cycles),
                cmocka_unit_test(test_dedup),
                cmocka_unit_test(test_store_roundtrip),
                cmocka_unit_test(test_store_primary_group),
                cmocka_unit_test(test_store_open_leaves_umask_alone),
                cmocka_unit_test(test_store_moves_old_identities),
                cmocka_unit_test(test_store_identities_apart),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
