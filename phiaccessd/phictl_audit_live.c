/* SPDX-License-Identifier: GPL-2.0-or-later */
/* phictl audit verify (no FILE): the daemon verifies the live store against
 * its own checkpoints and those in the journal (audit_verify.c) and answers
 * when done; this prints the verdict. Auditors and root only: the daemon
 * refuses anyone else. */

#include <stdio.h>
#include <string.h>

#include "phi/client.h"
#include "phi/macro.h"

#include "phictl.h"

/* A verification reads every record: a million take a second or two, the
 * log of years a few minutes. The daemon gives up after 15 minutes. */
#define VERIFY_TIMEOUT_MS (15 * 60 * 1000)

/* The value of the pair named key in a reply, or NULL. */
static const char *pair_value(const phi_msg *m, const char *key) {
        size_t n = phi_msg_field_count(m);

        for (size_t i = 0; i + 1 < n; i++) {
                uint16_t tag, next;
                const void *k, *v;

                if (phi_msg_field(m, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY || strcmp(k, key) != 0 ||
                    phi_msg_field(m, i + 1, &next, NULL, &v, NULL) < 0)
                        continue;
                if (next == PHI_TAG_VALUE)
                        return v;
                /* a number or a flag: printed from its own field below */
                return NULL;
        }
        return NULL;
}

static bool pair_number(const phi_msg *m, const char *key, uint64_t *ret) {
        size_t n = phi_msg_field_count(m);

        for (size_t i = 0; i + 1 < n; i++) {
                uint16_t tag, next;
                const void *k;

                if (phi_msg_field(m, i, &tag, NULL, &k, NULL) < 0 || tag != PHI_TAG_KEY || strcmp(k, key) != 0 ||
                    phi_msg_field(m, i + 1, &next, NULL, NULL, NULL) < 0 || next != PHI_TAG_NUMBER)
                        continue;
                return phi_msg_field_u64(m, i + 1, ret) == 0;
        }
        return false;
}

int ctl_audit_verify_live(const struct ctl *ctl) {
        _cleanup_msg_ phi_msg *req = phi_msg_new(PHI_MSG_AUDIT_VERIFY);
        _cleanup_msg_ phi_msg *reply = NULL;
        _cleanup_client_ phi_client *c = NULL;
        const char *outcome = NULL, *message = NULL;
        uint64_t records = 0, stored = 0, journaled = 0, ignored = 0, bad = 0;
        int r, error;

        if (!req)
                return EXIT_REFUSED;
        r = phi_client_connect(ctl->socket_path, PHI_CLIENT_DEFAULT_TIMEOUT_MS, &c);
        if (r < 0) {
                fprintf(stderr, "phictl: cannot reach phiaccessd at %s: %s\n", ctl->socket_path,
                        phi_client_strerror(r));
                return EXIT_UNREACHABLE;
        }
        phi_client_set_timeout(c, VERIFY_TIMEOUT_MS);
        r = phi_client_call(c, req, &reply);
        if (r < 0) {
                fprintf(stderr, "phictl: no valid answer from phiaccessd: %s\n", phi_wire_strerror(r));
                return EXIT_UNREACHABLE;
        }
        if (phi_msg_get_error(reply, &error, &message) == 0) {
                fprintf(stderr, "phictl: %s\n", message);
                return EXIT_REFUSED;
        }
        if (!(outcome = pair_value(reply, "outcome"))) {
                fprintf(stderr, "phictl: the daemon's answer has no outcome\n");
                return EXIT_UNREACHABLE;
        }
        if (ctl->json) {
                print_pairs(ctl, reply);
                return strcmp(outcome, "ok") == 0 ? EXIT_DONE : EXIT_REFUSED;
        }
        (void) pair_number(reply, "records", &records);
        (void) pair_number(reply, "checkpoints", &stored);
        (void) pair_number(reply, "journal_checkpoints", &journaled);
        (void) pair_number(reply, "journal_ignored", &ignored);
        if (strcmp(outcome, "ok") == 0) {
                const char *root = pair_value(reply, "root"), *origin = pair_value(reply, "origin");
                printf("verified:    the live audit log\n"
                       "records:     %llu\n"
                       "checkpoints: %llu stored, %llu in the journal\n"
                       "root:        %s\n"
                       "origin:      %s\n",
                       (unsigned long long) records, (unsigned long long) stored, (unsigned long long) journaled,
                       root ? root : "?", origin ? origin : "?");
                if (ignored > 0)
                        printf("ignored:     %llu journal entries that look like checkpoints of this log but are not "
                               "signed by this host's key (another host's of a fleet, or forged)\n",
                               (unsigned long long) ignored);
                return EXIT_DONE;
        }
        message = pair_value(reply, "error");
        if (pair_number(reply, "bad_seq", &bad))
                fprintf(stderr, "phictl: audit log NOT verified (%s), first bad seq %llu: %s\n", outcome,
                        (unsigned long long) bad, message ? message : "?");
        else
                fprintf(stderr, "phictl: audit log NOT verified (%s): %s\n", outcome, message ? message : "?");
        fprintf(stderr, "phictl: %llu records verified before it\n", (unsigned long long) records);
        return EXIT_REFUSED;
}
