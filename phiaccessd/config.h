/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* phiaccessd's configuration: /etc/phi/phiaccessd.conf (INI, see phiaccessd.conf(5)).
 *
 * A parsed configuration is immutable and reference-counted: the socket thread
 * and the LDAP thread each hold a reference, and SIGHUP swaps in a new one only
 * when the new file is valid as a whole (a half-valid reload changes nothing). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "phi/macro.h"
#include "phi/snapshot_format.h"
#include "totp.h"

#define PHI_CONFIG_PATH "/etc/phi/phiaccessd.conf"
#define PHI_CONFIG_MAX_URIS 8
#define PHI_CONFIG_MAX_LINE 4096   /* longer lines are an error, never split */
#define PHI_CONFIG_MAX_ERRORS 64
/* The snapshot header carries the list, so the format bounds it. */
#define PHI_CONFIG_MAX_PRIMARY_GIDS PHI_SNAP_MAX_PRIMARY_GIDS

enum phi_tls_mode {
        PHI_TLS_STARTTLS,
        PHI_TLS_LDAPS,
        PHI_TLS_NONE,
};

enum phi_sync_mode {
        PHI_SYNC_AUTO,       /* RFC 4533 when the root DSE lists the control, paged otherwise */
        PHI_SYNC_SYNCREPL,
        PHI_SYNC_PAGED,
};

enum phi_membership {
        PHI_MEMBERSHIP_BOTH,
        PHI_MEMBERSHIP_MEMBERUID,
        PHI_MEMBERSHIP_MEMBER,
};

/* Attribute names used to read users and groups (RFC 2307 / rfc2307bis defaults). */
struct phi_ldap_attrs_map {
        char *uid;
        char *uid_number;
        char *gid_number;
        char *gecos;
        char *home;
        char *shell;
        char *group_name;
        char *member_uid;
        char *member;
};

struct phi_config {
        unsigned refcount;
        char *path;

        /* [ldap] */
        char *uris[PHI_CONFIG_MAX_URIS];
        size_t n_uris;
        char *base;
        char *user_base;
        char *group_base;
        char *user_filter;
        char *group_filter;
        char *bind_dn;
        char *bind_password_file;
        enum phi_tls_mode tls;
        bool allow_insecure;
        char *ca_file;
        struct phi_ldap_attrs_map attrs;
        enum phi_membership membership;
        enum phi_sync_mode sync_mode;
        uint64_t min_uid;
        uint64_t min_gid;
        /* gids below min_gid that a directory user may still have as its
         * primary group (primary_gids_allowed); never 0. */
        uint32_t primary_gids_allowed[PHI_CONFIG_MAX_PRIMARY_GIDS];
        size_t n_primary_gids_allowed;
        uint64_t refresh_interval;     /* seconds */
        uint64_t shrink_threshold;     /* percent of users a refresh may remove */
        uint64_t network_timeout;      /* seconds */
        uint64_t page_size;

        /* [store] */
        char *store_backend;                /* "sqlite" or "postgresql" */
        /* SQLite: the store. PostgreSQL: the local file beside which the
         * identities stay (phi_store_identities_path), its lock and keys. */
        char *store_path;
        char *store_uri;                    /* PostgreSQL: libpq connection string; "" for SQLite */
        char *store_synchronous_commit;     /* PostgreSQL: on, remote_write, remote_apply, local */

        /* [daemon] */
        char *socket_path;
        char *pam_socket_path;
        char *snapshot_path;
        char *policy_path;
        char *admin_group;
        char *approver_group;
        char *auditor_group;
        char *passwd_file;
        char *group_file;

        /* [totp] */
        char *totp_master_key;              /* key file when no systemd credential */
        bool totp_create_master_key;
        bool totp_enroll_at_login;   /* a ticket holder may enrol at a PAM login (pam_phi enroll) */
        char *totp_issuer;
        enum phi_totp_algorithm totp_algorithm;
        uint64_t totp_digits;
        uint64_t totp_window;               /* steps */
        uint64_t totp_max_failures;
        uint64_t totp_host_max_failures;
        uint64_t totp_failure_window;       /* seconds */
        uint64_t totp_lockout;              /* seconds */
        uint64_t totp_ticket_lifetime;      /* seconds */

        /* [notify] */
        char *notify_command;               /* "" = off */
        uint64_t notify_timeout;            /* seconds */

        /* [audit] */
        char *audit_key;                    /* the Ed25519 signing key of the checkpoints */
        char *audit_origin;                 /* the checkpoints' origin line, the log's name; "" = the key's name */
        char *audit_trusted_keys;           /* a file of the fleet's other verifier keys; "" = none */
        uint64_t audit_checkpoint_records;  /* a checkpoint after this many records ... */
        uint64_t audit_checkpoint_interval; /* ... or this many seconds with new ones */
};

/* One problem found in a file: printed as "FILE:LINE: message". Line 0 means the
 * file as a whole (ownership, mode, a missing section). */
struct phi_config_error {
        char *file;
        unsigned line;
        char *message;
};

struct phi_config_errors {
        struct phi_config_error items[PHI_CONFIG_MAX_ERRORS];
        size_t n;
        size_t dropped;
};

/* Loads and validates path. On success *ret holds a config with refcount 1. On
 * failure returns -EINVAL (or -ENOMEM) with every problem found in errors (which
 * the caller must clear with phi_config_errors_clear). */
int phi_config_load(const char *path, struct phi_config **ret, struct phi_config_errors *errors)
        _phi_warn_unused_ _phi_nonnull_;

/* Same, from a string (fuzzing and unit tests): no ownership checks on the
 * config itself; referenced files (password file) are still checked. */
int phi_config_load_string(const char *name, const char *text, struct phi_config **ret,
                           struct phi_config_errors *errors) _phi_warn_unused_ _phi_nonnull_;

struct phi_config *phi_config_ref(struct phi_config *c);
void phi_config_unref(struct phi_config *c);
PHI_DEFINE_TRIVIAL_CLEANUP_FUNC(struct phi_config *, phi_config_unref);
#define _cleanup_config_ _cleanup_(phi_config_unrefp)

void phi_config_errors_print(const struct phi_config_errors *errors, FILE *f) _phi_nonnull_;
void phi_config_errors_clear(struct phi_config_errors *errors) _phi_nonnull_;

/* Opens a file only if it can be trusted as configuration: a regular file (no
 * symlink followed), owned by root, not writable by group or others; with
 * secret, not readable by others either. Returns the fd or a negative errno;
 * *ret_reason explains a refusal (-EPERM) in a sentence. */
int phi_config_open_trusted(const char *path, bool secret, const char **ret_reason)
        _phi_warn_unused_ _phi_nonnull_;

/* Reads the bind password (first line, without newline) from a trusted file.
 * The caller wipes it (phi_secret_free_str). */
int phi_config_read_password(const char *path, char **ret) _phi_warn_unused_ _phi_nonnull_;

/* Whether a directory user may have gid as its primary group: at or above
 * min_gid, or listed in primary_gids_allowed; never 0 or (gid_t) -1. The
 * directory must not shadow local system groups (sudo, shadow, disk, docker)
 * through a user's primary group any more than through a group entry. */
bool phi_config_primary_gid_allowed(const struct phi_config *c, uint64_t gid) _phi_nonnull_;

/* True when uri names the local host only, where plain LDAP never leaves the machine. */
bool phi_config_uri_is_loopback(const char *uri) _phi_nonnull_;

const char *phi_tls_mode_name(enum phi_tls_mode m);
