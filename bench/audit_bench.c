/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The audit log's offline verification (libphi_audit): an export of
 * 1,000,000 synthetic records (the daemon's kinds of events) checked by
 * phi_audit_export_verify() with one checkpoint every 10,000 records, beside
 * the floor measured in the same run on the same bytes: one SHA-256 pass over
 * the whole file (libsodium's, the one the verifier uses). Also the parts of
 * the verification (parsing every record alone; hashing every leaf and
 * building the tree from the hashes), writing the export, appends to the
 * in-memory tree, and bytes per record in the export and in a store that
 * keeps each leaf and its hash. CPU time of this thread; prints figures and
 * asserts nothing.
 *
 * audit_bench [--records N] [--every K] */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "phi/audit.h"
#include "phi/parse.h"

#include "../tests/tools/audit_synth.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "records", required_argument, NULL, 'n' },
                { "every", required_argument, NULL, 'e' },
                {},
        };
        uint64_t n = 1000000, every = 10000;
        char sk[PHI_AUDIT_SKEY_MAX], vk[PHI_AUDIT_VKEY_MAX], leaf[PHI_AUDIT_RECORD_MAX];
        struct phi_audit_signer s;
        struct phi_audit_verifier v;
        struct phi_audit_export_result res;
        const char *error;
        uint8_t h[PHI_AUDIT_HASH_SIZE];
        double t0, t_write, t_floor, t_verify, t_parse, t_hash, t_append;
        size_t len, leaf_bytes = 0;
        int c;

        while ((c = getopt_long(argc, argv, "n:e:", options, NULL)) != -1) {
                uint64_t *p = c == 'n' ? &n : c == 'e' ? &every : NULL;
                if (!p || phi_parse_u64(optarg, c == 'n' ? 1 : 0, 100000000, p) < 0) {
                        fprintf(stderr, "usage: %s [--records N] [--every K]\n", argv[0]);
                        return 2;
                }
        }
        if (sodium_init() < 0 || phi_audit_keygen("bench.example/audit", sk, vk) < 0 ||
            phi_audit_signer_parse(sk, strlen(sk), &s, &error) < 0 ||
            phi_audit_verifier_parse(vk, strlen(vk), &v, &error) < 0)
                return 1;

        /* writing: records encoded, each line with its hash, the tree, the
         * checkpoints signed (synth_export also builds the tree twice more
         * for the proof: an upper bound of the daemon's work) */
        t0 = now();
        char *data = synth_export(&s, s.name, n, 0, n, every, &len);
        t_write = now() - t0;

        t0 = now();
        phi_audit_sha256(data, len, h);
        t_floor = now() - t0;

        t0 = now();
        int r = phi_audit_export_verify(data, len, &v, 1, &res);
        t_verify = now() - t0;
        if (r < 0 || res.records != n) {
                fprintf(stderr, "verification failed: %s\n", res.what);
                return 1;
        }

        /* the parts, each over every record in one timed loop: the strict
         * parse; the leaf hash and the append to the tree */
        static struct phi_audit_parsed parsed;
        struct phi_audit_tree t;
        char *leaves = malloc(n * 256);
        size_t *offs = malloc((n + 1) * sizeof(size_t));
        if (!leaves || !offs)
                return 1;
        offs[0] = 0;
        for (uint64_t i = 0; i < n; i++) {
                size_t l = synth_leaf(i, leaf);
                if (l > 256)
                        return 1;
                memcpy(leaves + offs[i], leaf, l);
                offs[i + 1] = offs[i] + l;
        }
        leaf_bytes = offs[n];
        t0 = now();
        for (uint64_t i = 0; i < n; i++)
                if (phi_audit_record_parse(leaves + offs[i], offs[i + 1] - offs[i], &parsed, &error) < 0)
                        return 1;
        t_parse = now() - t0;
        phi_audit_tree_init(&t);
        t0 = now();
        for (uint64_t i = 0; i < n; i++) {
                phi_audit_leaf_hash(leaves + offs[i], offs[i + 1] - offs[i], h);
                if (phi_audit_tree_append_hash(&t, h) < 0)
                        return 1;
        }
        t_hash = now() - t0;
        free(leaves);
        free(offs);
        /* appends alone: the incremental edge, a leaf hash each */
        phi_audit_tree_init(&t);
        t0 = now();
        for (uint64_t i = 0; i < n; i++) {
                h[0] = (uint8_t) i;
                if (phi_audit_tree_append_hash(&t, h) < 0)
                        return 1;
        }
        t_append = now() - t0;

        printf("audit export: %llu records, a checkpoint every %llu (%llu signed), %zu bytes\n",
               (unsigned long long) n, (unsigned long long) every, (unsigned long long) res.checkpoints, len);
        printf("%-44s %10s %14s %9s\n", "", "seconds", "records/s", "vs floor");
        printf("%-44s %10.3f %14.0f %8.1fx\n", "phi_audit_export_verify (whole export)", t_verify, n / t_verify,
               t_verify / t_floor);
        printf("%-44s %10.3f %14.0f %8.1fx\n", "floor: SHA-256 of the file's bytes once", t_floor, n / t_floor, 1.0);
        printf("%-44s %10.3f %14.0f %8.1fx\n", "  part: parse every record (strict)", t_parse, n / t_parse,
               t_parse / t_floor);
        printf("%-44s %10.3f %14.0f %8.1fx\n", "  part: leaf hash + tree append", t_hash, n / t_hash,
               t_hash / t_floor);
        printf("%-44s %10.3f %14.0f %8s\n", "write the export (synthetic records)", t_write, n / t_write, "");
        printf("%-44s %10.3f %14.0f %8s\n", "tree appends alone (in memory)", t_append, n / t_append, "");
        printf("bytes per record: %.1f in the export, %.1f canonical record, %.1f record + leaf hash "
               "(what a store keeps, before its own overhead)\n",
               (double) len / (double) n, (double) leaf_bytes / (double) n,
               (double) leaf_bytes / (double) n + PHI_AUDIT_HASH_SIZE);
        printf("per million records: %.0f MB export, %.0f MB records + hashes\n", (double) len / (double) n,
               (double) leaf_bytes / (double) n + PHI_AUDIT_HASH_SIZE);
        free(data);
        phi_audit_signer_wipe(&s);
        return 0;
}
