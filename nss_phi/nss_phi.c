/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nss_phi: serves directory users and groups from the snapshot phiaccessd
 * publishes. Loaded into every process that resolves a name, so it links libc
 * only, never blocks, never talks to a socket or LDAP, and never trusts the file.
 *
 * Until the snapshot reader lands every lookup answers UNAVAIL ("this source
 * cannot answer"), which makes glibc move on to the next source in
 * nsswitch.conf exactly as when no snapshot has been published yet.
 */

#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <sys/types.h>

#include "phi/macro.h"

#define NSS_UNAVAIL(errnop)                  \
        do {                                 \
                *(errnop) = ENOENT;          \
                return NSS_STATUS_UNAVAIL;   \
        } while (0)

_phi_export_ enum nss_status _nss_phi_getpwnam_r(const char *name, struct passwd *pwd, char *buf,
                                                 size_t buflen, int *errnop);
_phi_export_ enum nss_status _nss_phi_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf,
                                                 size_t buflen, int *errnop);
_phi_export_ enum nss_status _nss_phi_getgrnam_r(const char *name, struct group *grp, char *buf,
                                                 size_t buflen, int *errnop);
_phi_export_ enum nss_status _nss_phi_getgrgid_r(gid_t gid, struct group *grp, char *buf,
                                                 size_t buflen, int *errnop);

enum nss_status _nss_phi_getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
                                    int *errnop) {
        (void) name, (void) pwd, (void) buf, (void) buflen;
        NSS_UNAVAIL(errnop);
}

enum nss_status _nss_phi_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t buflen,
                                    int *errnop) {
        (void) uid, (void) pwd, (void) buf, (void) buflen;
        NSS_UNAVAIL(errnop);
}

enum nss_status _nss_phi_getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        (void) name, (void) grp, (void) buf, (void) buflen;
        NSS_UNAVAIL(errnop);
}

enum nss_status _nss_phi_getgrgid_r(gid_t gid, struct group *grp, char *buf, size_t buflen,
                                    int *errnop) {
        (void) gid, (void) grp, (void) buf, (void) buflen;
        NSS_UNAVAIL(errnop);
}
