/* SPDX-License-Identifier: GPL-2.0-or-later */
/* For audit_export_bench.sh.
 *
 *   audit_fill fill STORE KEY ORIGIN N [BATCH]
 *       appends N synthetic records (the daemon's kinds of events,
 *       tests/tools/audit_synth.h) to the audit log of the store at STORE
 *       with the daemon's own writer (audit_log.c, signing with KEY, made
 *       when missing, as the log ORIGIN: the daemon's), BATCH records a transaction (default 10,000), a
 *       checkpoint at each commit; prints the appends/s.
 *   audit_fill floors DIR BYTES
 *       the floors measured beside an export: one SHA-256 pass (libsodium)
 *       over BYTES of data in memory, writing BYTES to a file in DIR, and
 *       fdatasync of 4 KiB appends there (median of 100).
 * Prints figures and asserts nothing. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_log.h"
#include "phi/audit.h"
#include "phi/parse.h"
#include "store.h"

#include "../tests/tools/audit_synth.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int fill(const char *path, const char *key, const char *origin, uint64_t n, uint64_t batch) {
        const struct phi_audit_log_config c = {
                .key_path = key,
                .origin = origin,
                .checkpoint_records = batch,
                .checkpoint_interval = 60,
        };
        phi_store *s = NULL;
        phi_audit_log *l = NULL;
        double t0;
        int r;

        if ((r = phi_store_open("sqlite", path, PHI_IDENTITIES_NONE, &s)) < 0 ||
            (r = phi_audit_log_open(s, &c, &l)) < 0) {
                fprintf(stderr, "audit_fill: %s: %s\n", path, strerror(-r));
                return 1;
        }
        t0 = now();
        for (uint64_t i = phi_audit_log_size(l); i < n && r >= 0;) {
                char *note = NULL;
                if ((r = phi_store_begin(s)) < 0)
                        break;
                r = phi_audit_log_begin(l);
                for (uint64_t k = 0; k < batch && i < n && r >= 0; k++, i++) {
                        struct synth_record x;
                        synth_record(i, &x);
                        r = phi_audit_log_append(l, &x.rec, false);
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
        if (r < 0)
                fprintf(stderr, "audit_fill: append: %s\n", strerror(-r));
        else
                printf("filled %llu records in %.2f s: %.0f durable appends/s (%llu a transaction)\n",
                       (unsigned long long) phi_audit_log_size(l), now() - t0, (double) n / (now() - t0),
                       (unsigned long long) batch);
        phi_audit_log_free(l);
        phi_store_free(s);
        return r < 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int floors(const char *dir, uint64_t bytes) {
        uint8_t hash[PHI_AUDIT_HASH_SIZE], page[4096];
        char path[4096];
        double t0, syncs[100];
        unsigned char *data = malloc(bytes ? bytes : 1);
        int fd;

        if (!data || sodium_init() < 0)
                return 1;
        for (uint64_t i = 0; i < bytes; i++)
                data[i] = (unsigned char) ('a' + i % 26);
        t0 = now();
        phi_audit_sha256(data, bytes, hash);
        printf("floor: SHA-256 of %llu bytes: %.3f s\n", (unsigned long long) bytes, now() - t0);

        snprintf(path, sizeof(path), "%s/floor.bin", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(path);
                return 1;
        }
        t0 = now();
        for (uint64_t off = 0; off < bytes;) {
                ssize_t k = write(fd, data + off, bytes - off > 65536 ? 65536 : bytes - off);
                if (k <= 0) {
                        perror(path);
                        return 1;
                }
                off += (uint64_t) k;
        }
        printf("floor: write(2) of %llu bytes in 64 KiB pieces: %.3f s\n", (unsigned long long) bytes, now() - t0);
        memset(page, 'x', sizeof(page));
        for (int i = 0; i < 100; i++) {
                t0 = now();
                if (write(fd, page, sizeof(page)) != (ssize_t) sizeof(page) || fdatasync(fd) < 0) {
                        perror(path);
                        return 1;
                }
                syncs[i] = now() - t0;
        }
        qsort(syncs, 100, sizeof(syncs[0]), cmp_double);
        printf("floor: fdatasync of a 4 KiB append: median %.0f us, p90 %.0f us\n", syncs[50] * 1e6, syncs[90] * 1e6);
        close(fd);
        unlink(path);
        free(data);
        return 0;
}

int main(int argc, char **argv) {
        uint64_t n = 0, batch = 10000;

        if ((argc == 6 || argc == 7) && strcmp(argv[1], "fill") == 0 &&
            phi_parse_u64(argv[5], 1, 100000000, &n) == 0 &&
            (argc == 6 || phi_parse_u64(argv[6], 1, 1000000, &batch) == 0))
                return fill(argv[2], argv[3], argv[4], n, batch);
        if (argc == 4 && strcmp(argv[1], "floors") == 0 && phi_parse_u64(argv[3], 0, UINT64_C(1) << 34, &n) == 0)
                return floors(argv[2], n);
        fprintf(stderr, "usage: audit_fill fill STORE KEY ORIGIN N [BATCH]\n       audit_fill floors DIR BYTES\n");
        return 2;
}
