/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's audit log at work (audit_append_bench.sh drives it):
 *
 *   auth   --socket PAM --threads T --count N --prefix P
 *          N AUTH requests of unknown users (P0, P1, ...) with a wrong code,
 *          from T persistent connections to the PAM socket: each answer
 *          comes after the round's commit, whose transaction holds the
 *          request's failure counter and its audit record (auth_fail). Prints
 *          answers and answers/s (wall clock).
 *   sha256 --count N
 *          the leaf hashes of N records of the daemon's size (SHA-256 of
 *          0x00 || leaf): the CPU floor under appending and verifying.
 *   fill   --store PATH --key SKEYFILE --count N
 *          appends N synthetic records to the store with the daemon's own
 *          writer (audit_log.c: leaves, tree, a checkpoint every 1,000), in
 *          transactions of 10,000; for the verification of a large log.
 *   treeread --store PATH --key SKEYFILE --count N
 *          N rounds that only begin the audit log (phi_audit_log_begin: the
 *          stored tree read under the round's lock, what lets several daemons
 *          append to one tree), each a BEGIN IMMEDIATE .. COMMIT with no
 *          write, beside N such empty rounds: the single writer's cost of
 *          the fleet's read, per round.
 *
 * Prints figures and asserts nothing. */

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_log.h"
#include "phi/audit.h"
#include "phi/client.h"
#include "phi/wire.h"
#include "store.h"

#include "../tests/tools/audit_synth.h"

static struct {
        const char *socket, *prefix, *store, *key;
        uint64_t count;
        unsigned threads;
} O = { .prefix = "bench", .count = 10000, .threads = 32 };

static atomic_uint_fast64_t next_i, answered, refused_other;

static double wall(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void *auth_worker(void *unused) {
        phi_client *c = NULL;

        (void) unused;
        if (phi_client_connect(O.socket, 30000, &c) < 0) {
                fprintf(stderr, "cannot connect to %s\n", O.socket);
                return NULL;
        }
        for (;;) {
                uint64_t i = atomic_fetch_add(&next_i, 1);
                phi_msg *req, *reply = NULL;
                char user[64];
                int error;
                const char *msg;

                if (i >= O.count)
                        break;
                snprintf(user, sizeof(user), "%s%llu", O.prefix, (unsigned long long) i);
                req = phi_msg_new(PHI_MSG_AUTH);
                if (!req || phi_msg_put_str(req, PHI_TAG_USER, user) < 0 ||
                    phi_msg_put_str(req, PHI_TAG_CODE, "000000") < 0 ||
                    phi_msg_put_str(req, PHI_TAG_SERVICE, "bench") < 0 || phi_client_call(c, req, &reply) < 0) {
                        phi_msg_free(req);
                        fprintf(stderr, "request failed\n");
                        break;
                }
                phi_msg_free(req);
                /* A wrong code is refused (EACCES) once its failure is durable. */
                if (phi_msg_get_error(reply, &error, &msg) == 0 && error == -EACCES)
                        atomic_fetch_add(&answered, 1);
                else
                        atomic_fetch_add(&refused_other, 1);
                phi_msg_free(reply);
        }
        phi_client_free(c);
        return NULL;
}

static int run_auth(void) {
        pthread_t *t = calloc(O.threads, sizeof(*t));
        double t0, t1;

        if (!O.socket || !t)
                return 2;
        t0 = wall();
        for (unsigned i = 0; i < O.threads; i++)
                if (pthread_create(&t[i], NULL, auth_worker, NULL) != 0)
                        return 1;
        for (unsigned i = 0; i < O.threads; i++)
                pthread_join(t[i], NULL);
        t1 = wall();
        printf("auth answered=%llu other=%llu seconds=%.3f per_second=%.0f\n",
               (unsigned long long) atomic_load(&answered), (unsigned long long) atomic_load(&refused_other), t1 - t0,
               (double) atomic_load(&answered) / (t1 - t0));
        free(t);
        return atomic_load(&refused_other) ? 1 : 0;
}

static int run_sha256(void) {
        char leaf[PHI_AUDIT_RECORD_MAX];
        uint8_t h[PHI_AUDIT_HASH_SIZE], acc = 0;
        size_t n = synth_leaf(1, leaf), total = 0;
        double t0 = wall(), t1;

        for (uint64_t i = 0; i < O.count; i++) {
                leaf[0] = (char) ('{' + (acc & 0));   /* keep the loop honest */
                phi_audit_leaf_hash(leaf, n, h);
                acc ^= h[0];
                total += n;
        }
        t1 = wall();
        printf("sha256 leaves=%llu leaf_bytes=%zu seconds=%.3f per_second=%.0f (check %u)\n",
               (unsigned long long) O.count, n, t1 - t0, (double) O.count / (t1 - t0), acc);
        (void) total;
        return 0;
}

static int run_fill(void) {
        const struct phi_audit_log_config ac = {
                /* no origin: the key's name, as the daemon's own log has it */
                .key_path = O.key, .key_name = "bench/phi-audit", .checkpoint_records = 1000,
                .checkpoint_interval = 60,
        };
        phi_store *s = NULL;
        phi_audit_log *l = NULL;
        double t0 = wall();
        uint64_t done = 0;
        int r;

        if (!O.store || !O.key)
                return 2;
        if ((r = phi_store_open("sqlite", O.store, PHI_IDENTITIES_NONE, &s)) < 0 ||
            (r = phi_audit_log_open(s, &ac, &l)) < 0) {
                fprintf(stderr, "cannot open %s: %s\n", O.store, phi_errno_text(r));
                return 1;
        }
        while (done < O.count && r >= 0) {
                char *note = NULL;
                uint64_t base = phi_audit_log_size(l);
                if ((r = phi_store_begin(s)) < 0)
                        break;
                r = phi_audit_log_begin(l);
                for (uint64_t k = 0; k < 10000 && done < O.count && r >= 0; k++, done++) {
                        struct synth_record x;
                        synth_record(base + k, &x);
                        /* Checkpoints as the daemon makes them: every 1,000. */
                        r = phi_audit_log_append(l, &x.rec, false);
                        if (r >= 0 && (base + k + 1) % 1000 == 0) {
                                r = phi_audit_log_finish(l, (uint64_t) time(NULL), &note);
                                if (note)
                                        phi_audit_log_checkpoint_committed(l, phi_audit_log_size(l), (uint64_t) time(NULL));
                                free(note);
                                note = NULL;
                        }
                }
                if (r >= 0)
                        r = phi_audit_log_finish(l, (uint64_t) time(NULL), &note);
                if (r >= 0)
                        r = phi_store_commit(s);
                if (r < 0) {
                        phi_store_rollback(s);
                        phi_audit_log_rollback(l);
                } else if (note)
                        phi_audit_log_checkpoint_committed(l, phi_audit_log_size(l), (uint64_t) time(NULL));
                free(note);
        }
        printf("fill records=%llu size=%llu seconds=%.3f\n", (unsigned long long) done,
               (unsigned long long) phi_audit_log_size(l), wall() - t0);
        phi_audit_log_free(l);
        phi_store_free(s);
        return r < 0 ? 1 : 0;
}

static int run_treeread(void) {
        const struct phi_audit_log_config ac = {
                /* no origin: the key's name, as the daemon's own log has it */
                .key_path = O.key, .key_name = "bench/phi-audit", .checkpoint_records = 1000,
                .checkpoint_interval = 60,
        };
        phi_store *s = NULL;
        phi_audit_log *l = NULL;
        double t[3];
        int r;

        if (!O.store || !O.key)
                return 2;
        if ((r = phi_store_open("sqlite", O.store, PHI_IDENTITIES_NONE, &s)) < 0 ||
            (r = phi_audit_log_open(s, &ac, &l)) < 0) {
                fprintf(stderr, "cannot open %s: %s\n", O.store, phi_errno_text(r));
                return 1;
        }
        t[0] = wall();
        for (uint64_t i = 0; i < O.count && r >= 0; i++)
                if ((r = phi_store_begin(s)) >= 0)
                        r = phi_store_commit(s);
        t[1] = wall();
        for (uint64_t i = 0; i < O.count && r >= 0; i++)
                if ((r = phi_store_begin(s)) >= 0 && (r = phi_audit_log_begin(l)) >= 0)
                        r = phi_store_commit(s);
        t[2] = wall();
        if (r < 0)
                fprintf(stderr, "round failed: %s\n", phi_errno_text(r));
        else
                printf("treeread rounds=%llu tree_size=%llu empty_round_us=%.2f with_tree_read_us=%.2f "
                       "tree_read_us=%.2f\n",
                       (unsigned long long) O.count, (unsigned long long) phi_audit_log_size(l),
                       (t[1] - t[0]) * 1e6 / (double) O.count, (t[2] - t[1]) * 1e6 / (double) O.count,
                       ((t[2] - t[1]) - (t[1] - t[0])) * 1e6 / (double) O.count);
        phi_audit_log_free(l);
        phi_store_free(s);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "threads", required_argument, NULL, 't' },
                { "count", required_argument, NULL, 'n' },  { "prefix", required_argument, NULL, 'p' },
                { "store", required_argument, NULL, 'S' },  { "key", required_argument, NULL, 'k' },
                {},
        };
        int c;

        if (argc < 2) {
                fprintf(stderr, "usage: audit_append_bench auth|sha256|fill|treeread [--socket P] [--threads T] [--count N] "
                                "[--prefix P] [--store S] [--key K]\n");
                return 2;
        }
        optind = 2;
        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1)
                switch (c) {
                case 's': O.socket = optarg; break;
                case 't': O.threads = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'n': O.count = strtoull(optarg, NULL, 10); break;
                case 'p': O.prefix = optarg; break;
                case 'S': O.store = optarg; break;
                case 'k': O.key = optarg; break;
                default: return 2;
                }
        if (strcmp(argv[1], "auth") == 0)
                return run_auth();
        if (strcmp(argv[1], "sha256") == 0)
                return run_sha256();
        if (strcmp(argv[1], "fill") == 0)
                return run_fill();
        if (strcmp(argv[1], "treeread") == 0)
                return run_treeread();
        return 2;
}
