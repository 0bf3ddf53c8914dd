/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pam_phi: the PAM face of phiaccessd. A thin client: it gathers the PAM items,
 * asks the daemon over the socket, and obeys. It holds no secret and no policy.
 *
 * Fail closed: every path that is not an explicit "yes" from the daemon returns a
 * denial (PAM_AUTHINFO_UNAVAIL when the daemon cannot be asked, PAM_PERM_DENIED
 * or PAM_AUTH_ERR otherwise), never PAM_SUCCESS and never PAM_IGNORE, so that a
 * stack written with "sufficient" or "[default=ignore]" cannot fall through.
 */

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdbool.h>
#include <syslog.h>

#include "phi/client.h"
#include "phi/macro.h"
#include "phi/parse.h"

struct pam_phi_options {
        const char *socket_path;
        int timeout_ms;
        bool debug;
        bool combined;
        bool openvpn;
        bool elevate;
};

/* Options come from the stack file (root-owned), but a typo must still be loud:
 * an unknown option is an error, not silently ignored. */
static int phi_pam_parse_options(pam_handle_t *pamh, int argc, const char **argv,
                                 struct pam_phi_options *ret) {
        struct pam_phi_options o = {
                .socket_path = PHI_SOCKET_PATH,
                .timeout_ms = PHI_CLIENT_DEFAULT_TIMEOUT_MS,
        };
        int r = 0;

        for (int i = 0; i < argc && r == 0; i++) {
                const char *a = argv[i];
                uint64_t v;

                if (strncmp(a, "timeout=", 8) == 0) {
                        if (phi_parse_u64(a + 8, 1, 60, &v) < 0) {
                                pam_syslog(pamh, LOG_ERR, "bad option '%s': seconds from 1 to 60", a);
                                r = -EINVAL;
                        } else
                                o.timeout_ms = (int) v * 1000;
                } else if (strncmp(a, "socket=", 7) == 0 && a[7] == '/')
                        o.socket_path = a + 7;
                else if (strcmp(a, "debug") == 0)
                        o.debug = true;
                else if (strcmp(a, "combined") == 0)
                        o.combined = true;
                else if (strcmp(a, "openvpn") == 0)
                        o.openvpn = true;
                else if (strcmp(a, "elevate") == 0)
                        o.elevate = true;
                else {
                        pam_syslog(pamh, LOG_ERR, "unknown option '%s'", a);
                        r = -EINVAL;
                }
        }
        if (r == 0)
                *ret = o;
        return r;
}

_phi_export_ int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct pam_phi_options o;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0)
                return PAM_AUTHINFO_UNAVAIL;
        pam_syslog(pamh, LOG_ERR, "code verification is not available in this build; denying");
        return PAM_AUTHINFO_UNAVAIL;
}

_phi_export_ int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) pamh, (void) flags, (void) argc, (void) argv;
        /* No credentials to establish; succeeding here grants nothing by itself. */
        return PAM_SUCCESS;
}

_phi_export_ int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct pam_phi_options o;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0)
                return PAM_PERM_DENIED;
        pam_syslog(pamh, LOG_ERR, "access policy is not available in this build; denying");
        return PAM_PERM_DENIED;
}

_phi_export_ int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct pam_phi_options o;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0)
                return PAM_SESSION_ERR;
        return PAM_SESSION_ERR;
}

_phi_export_ int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct pam_phi_options o;

        (void) flags;
        if (phi_pam_parse_options(pamh, argc, argv, &o) < 0)
                return PAM_SESSION_ERR;
        return PAM_SESSION_ERR;
}
