/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <time.h>

#include "audit_handlers.h"
#include "audit_verify.h"
#include "backup.h"
#include "dispatch.h"
#include "elevation_handlers.h"
#include "journal.h"
#include "localfiles.h"
#include "phi/parse.h"
#include "server.h"
#include "policy_state.h"
#include "totp_handlers.h"

typedef int (*handler_fn)(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                          phi_msg **ret_reply, uint64_t *ret_ticket);

struct verb {
        uint16_t type;
        const char *name;       /* as phictl spells it, for messages */
        unsigned allowed;       /* enum phi_caller_class bits */
        handler_fn handler;
};

static int handle_status(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket);
static int handle_sync(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                       phi_msg **ret_reply, uint64_t *ret_ticket);
static int handle_reload(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket);
static int handle_user_show(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket);
static int handle_sessions(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket);

/* Every request the daemon serves. Rows are appended by later features. */
static const struct verb verbs[] = {
        { PHI_MSG_STATUS, "status", PHI_CALLER_ANYONE, handle_status },
        { PHI_MSG_SYNC, "sync", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, handle_sync },
        { PHI_MSG_USER_SHOW, "user show", PHI_CALLER_ANYONE, handle_user_show },
        { PHI_MSG_RELOAD, "reload", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, handle_reload },
        { PHI_MSG_POLICY_CHECK, "policy check", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, phi_handle_policy_check },
        { PHI_MSG_SESSIONS, "sessions", PHI_CALLER_ROOT | PHI_CALLER_ADMIN | PHI_CALLER_AUDITOR, handle_sessions },
        /* Who may do what to which request is the lifecycle's (elevation.c),
         * by the policy's roles; here only that the caller is a user. */
        { PHI_MSG_ELEV_REQUEST, "request", PHI_CALLER_ANYONE, phi_handle_elev_request },
        { PHI_MSG_ELEV_DECIDE, "approve", PHI_CALLER_ANYONE, phi_handle_elev_decide },
        { PHI_MSG_ELEV_CANCEL, "cancel", PHI_CALLER_ANYONE, phi_handle_elev_cancel },
        { PHI_MSG_ELEV_REVOKE, "revoke", PHI_CALLER_ANYONE, phi_handle_elev_revoke },
        { PHI_MSG_ELEV_LIST, "requests", PHI_CALLER_ANYONE, phi_handle_elev_list },
        { PHI_MSG_BREAKGLASS, "breakglass", PHI_CALLER_ANYONE, phi_handle_breakglass },
        { PHI_MSG_REVIEW, "review", PHI_CALLER_ANYONE, phi_handle_review },
        { PHI_MSG_AUTH, "auth", PHI_CALLER_ROOT, phi_handle_auth },
        { PHI_MSG_TOTP_ISSUE, "totp issue", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, phi_handle_totp_issue },
        { PHI_MSG_TOTP_ENROLL, "totp enroll", PHI_CALLER_ANYONE, phi_handle_totp_enroll },
        { PHI_MSG_TOTP_ACTIVATE, "totp enroll", PHI_CALLER_ANYONE, phi_handle_totp_activate },
        { PHI_MSG_TOTP_RESET, "totp reset", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, phi_handle_totp_reset },
        /* Root and admin_group, as SPEC.md has it: the copy holds every sealed
         * seed, but sealed with a key admins cannot read (backup.c). */
        { PHI_MSG_BACKUP, "backup", PHI_CALLER_ROOT | PHI_CALLER_ADMIN, phi_handle_backup },
        /* Root and auditor_group: the handlers check it themselves, to name
         * the group in their refusal (audit_handlers.c). */
        { PHI_MSG_AUDIT_QUERY, "audit", PHI_CALLER_ANYONE, phi_handle_audit_query },
        { PHI_MSG_AUDIT_EXPORT, "audit export", PHI_CALLER_ANYONE, phi_handle_audit_export },
        { PHI_MSG_AUDIT_VERIFY, "audit verify", PHI_CALLER_ROOT | PHI_CALLER_AUDITOR, phi_handle_audit_verify },
};

/* The verbs counted against PHI_SERVER_ELEVATION_BURST (server.h). */
static bool elevation_change(uint16_t type) {
        static const uint16_t types[] = { PHI_MSG_ELEV_REQUEST, PHI_MSG_ELEV_DECIDE, PHI_MSG_ELEV_CANCEL,
                                          PHI_MSG_ELEV_REVOKE, PHI_MSG_BREAKGLASS };

        for (size_t i = 0; i < PHI_ELEMENTSOF(types); i++)
                if (types[i] == type)
                        return true;
        return false;
}

static bool in_groups(char **groups, size_t n, const char *g) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(groups[i], g) == 0)
                        return true;
        return false;
}

void phi_caller_identify(struct phi_daemon *d, const struct ucred *cred, struct phi_caller *ret) {
        const struct phi_config *c = d->config;
        struct phi_caller who = { .uid = cred->uid, .gid = cred->gid, .pid = cred->pid, .passed_fd = -1 };
        _cleanup_free_ char *name = NULL;
        struct phi_user u = { 0 };
        gid_t gid = cred->gid;

        who.classes = PHI_CALLER_ANYONE;
        if (cred->uid == 0)
                who.classes |= PHI_CALLER_ROOT;
        /* Local accounts first, as "passwd: files phi" resolves them. */
        if (phi_local_user_by_uid(c->passwd_file, cred->uid, &name, &gid) == 0)
                who.known = true;
        else if (phi_store_user_get_by_uid(d->store, cred->uid, &u) == 0) {
                name = strdup(u.name);
                /* A primary gid the directory may not give (below min_gid, not
                 * listed: a store written before the rule) makes no one a
                 * member of a local group. */
                gid = phi_config_primary_gid_allowed(c, u.gid) ? u.gid : (gid_t) -1;
                who.known = name != NULL;
                phi_user_clear(&u);
        }
        if (who.known) {
                snprintf(who.name, sizeof(who.name), "%s", name);
                who.user_gid = gid;
        } else {
                snprintf(who.name, sizeof(who.name), "uid %u", (unsigned) cred->uid);
                who.roles_resolved = true;   /* an unknown uid has none */
        }
        *ret = who;
}

void phi_caller_resolve_roles(struct phi_daemon *d, struct phi_caller *who) {
        const struct phi_config *c = d->config;
        char **groups = NULL;
        size_t n_groups = 0;

        if (who->roles_resolved)
                return;
        who->roles_resolved = true;
        if (phi_store_user_groups(d->store, who->name, &groups, &n_groups) < 0) {
                groups = NULL;   /* no directory roles; local groups still count */
                n_groups = 0;
        }
        const struct {
                const char *group;
                unsigned cls;
        } roles[] = {
                { c->admin_group, PHI_CALLER_ADMIN },
                { c->approver_group, PHI_CALLER_APPROVER },
                { c->auditor_group, PHI_CALLER_AUDITOR },
        };
        for (size_t i = 0; i < PHI_ELEMENTSOF(roles); i++)
                if (in_groups(groups, n_groups, roles[i].group) ||
                    phi_local_group_has_member(c->group_file, roles[i].group, who->name, who->user_gid))
                        who->classes |= roles[i].cls;
        phi_strv_free(groups, n_groups);
}

static const char *class_list(const struct phi_daemon *d, unsigned allowed, char *buf, size_t len) {
        size_t used = 0;

        buf[0] = 0;
#define ADD(bit, text)                                                                              \
        if (allowed & (bit))                                                                      \
                used += (size_t) snprintf(buf + used, used < len ? len - used : 0, "%s%s",        \
                                          used ? " or " : "", text);
        ADD(PHI_CALLER_ROOT, "root");
        if (allowed & PHI_CALLER_ADMIN)
                used += (size_t) snprintf(buf + used, used < len ? len - used : 0, "%smembers of %s",
                                          used ? " or " : "", d->config->admin_group);
        if (allowed & PHI_CALLER_APPROVER)
                used += (size_t) snprintf(buf + used, used < len ? len - used : 0, "%smembers of %s",
                                          used ? " or " : "", d->config->approver_group);
        if (allowed & PHI_CALLER_AUDITOR)
                used += (size_t) snprintf(buf + used, used < len ? len - used : 0, "%smembers of %s",
                                          used ? " or " : "", d->config->auditor_group);
        ADD(PHI_CALLER_SELF, "the user concerned");
#undef ADD
        return buf;
}

/* Any local user can send refused requests as fast as the socket takes them:
 * past the caller's budget a refusal is only counted, and the interval's
 * summary tells how many (server.c). */
void phi_dispatch_journal_refusal(struct phi_daemon *d, const struct phi_caller *caller, const char *verb,
                                  const char *reason) {
        char uid[24];

        if (d->refusals && !phi_ratelimit_admit(d->refusals, caller->uid, caller->name))
                return;

        snprintf(uid, sizeof(uid), "%u", (unsigned) caller->uid);
        const struct phi_journal_field fields[] = {
                { "PHI_ACTOR", caller->name },
                { "PHI_USER", caller->name },
                { "PHI_SERVICE", "phiaccessd" },
                { "PHI_VERB", verb },
                { "PHI_REASON", reason },
                { "PHI_CALLER_UID", uid },
        };
        phi_journal_event_async(PHI_EVENT_ACCESS_DENIED, LOG_WARNING, fields, PHI_ELEMENTSOF(fields),
                                "Request '%s' by %s refused: %s", verb, caller->name, reason);
}

int phi_dispatch(struct phi_daemon *d, const struct phi_caller *identified, const phi_msg *req,
                 phi_msg **ret_reply, uint64_t *ret_ticket) {
        uint16_t type = phi_msg_type(req);
        const struct verb *v = NULL;
        struct phi_caller copy = *identified, *caller = &copy;
        unsigned classes;
        const char *user = NULL;

        *ret_reply = NULL;
        *ret_ticket = 0;
        d->requests++;
        for (size_t i = 0; i < PHI_ELEMENTSOF(verbs); i++)
                if (verbs[i].type == type)
                        v = &verbs[i];
        if (!v) {
                const char *name = phi_msg_type_name(type);
                d->refused++;
                phi_dispatch_journal_refusal(d, caller, name ? name : "unknown", "request type not served");
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply,
                                         "request '%s' is not served by this phiaccessd",
                                         name ? name : "unknown");
        }
        /* Roles are looked up only when nothing cheaper already allows the verb. */
        if (!(caller->classes & v->allowed))
                phi_caller_resolve_roles(d, caller);
        classes = caller->classes;
        if (phi_msg_get_str(req, PHI_TAG_USER, &user) == 0 && caller->name[0] &&
            strcmp(user, caller->name) == 0)
                classes |= PHI_CALLER_SELF;
        if (!(classes & v->allowed)) {
                char who[256], reason[512];
                d->refused++;
                snprintf(reason, sizeof(reason), "'%s' is only for %s", v->name,
                         class_list(d, v->allowed, who, sizeof(who)));
                phi_dispatch_journal_refusal(d, caller, v->name, reason);
                return phi_msg_new_error(-EACCES, ret_reply, "permission denied: %s; you are %s",
                                         reason, caller->name);
        }
        if (elevation_change(type) && caller->uid != 0 && d->elevation_calls &&
            !phi_ratelimit_admit(d->elevation_calls, caller->uid, caller->name)) {
                d->refused++;
                phi_dispatch_journal_refusal(d, caller, v->name, "too_many_requests");
                return phi_msg_new_error(-EBUSY, ret_reply, "too many elevation requests and decisions: at most %d "
                                         "in %d s; try again shortly", PHI_SERVER_ELEVATION_BURST,
                                         PHI_SERVER_JOURNAL_INTERVAL_S);
        }
        return v->handler(d, caller, req, ret_reply, ret_ticket);
}

int phi_dispatch_bad_frame(int error, phi_msg **ret_reply) {
        return phi_msg_new_error(-EPROTO, ret_reply, "malformed request: %s", phi_wire_strerror(error));
}

int phi_dispatch_sync_reply(int error, const char *message, phi_msg **ret_reply) {
        _cleanup_msg_ phi_msg *m = NULL;
        int r;

        if (error < 0)
                return phi_msg_new_error(error, ret_reply, "sync failed: %s", message);
        m = phi_msg_new(PHI_MSG_OK);
        if (!m)
                return -ENOMEM;
        if ((r = phi_msg_put_str(m, PHI_TAG_MESSAGE, message)) < 0)
                return r;
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}

/* --------------------------------------------------------------- handlers */

static void format_time(uint64_t t, char *buf, size_t len) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (t == 0 || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "never");
}

static int put_u64(phi_msg *m, const char *key, uint64_t v) {
        return phi_msg_put_number(m, key, v);
}

/* The shared store: its backend, where it is (a file, or a PostgreSQL
 * server and database, never a password) and whether it answers now. */
static int store_status(struct phi_daemon *d, phi_msg *m) {
        char where[512];
        bool reachable = false;
        int r;

        if (!d->store)
                return 0;
        if ((r = phi_store_probe(d->store, where, sizeof(where), &reachable)) < 0)
                return r;
        if ((r = phi_msg_put_pair(m, "store_backend", phi_store_backend_name(d->store))) < 0 ||
            (r = phi_msg_put_pair(m, "store", where)) < 0 || (r = phi_msg_put_flag(m, "store_reachable", reachable)) < 0)
                return r;
        return 0;
}

static int handle_status(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        struct phi_sync_status st;
        char last[32], since[32];
        uint64_t now = (uint64_t) time(NULL);
        int r;

        (void) caller, (void) req, (void) ret_ticket;
        if (!m)
                return -ENOMEM;
        phi_sync_get_status(d->sync, &st);
        format_time(st.last_success, last, sizeof(last));
        format_time(st.outage_since, since, sizeof(since));
        if ((r = phi_msg_put_pair(m, "daemon", "running")) < 0 ||
            (r = phi_msg_put_pair(m, "version", PHI_VERSION)) < 0 ||
            (r = put_u64(m, "uptime_seconds", now - d->started)) < 0 ||
            (r = phi_msg_put_pair(m, "sync_state", st.state)) < 0 ||
            (r = phi_msg_put_pair(m, "sync_mode", st.mode[0] ? st.mode : "unknown")) < 0 ||
            (r = phi_msg_put_pair(m, "directory", st.uri[0] ? st.uri : "none")) < 0 ||
            (r = phi_msg_put_pair(m, "directory_tls", phi_tls_mode_name(d->config->tls))) < 0 ||
            (r = phi_msg_put_pair(m, "last_sync", last)) < 0 ||
            /* Never synced: no age (null in JSON); last_sync says "never". */
            (st.last_success &&
             (r = put_u64(m, "sync_age_seconds", now > st.last_success ? now - st.last_success : 0)) < 0) ||
            (r = put_u64(m, "last_refresh_ms", st.last_duration_ms)) < 0 ||
            (r = phi_msg_put_flag(m, "outage", st.outage_since != 0)) < 0 ||
            (r = phi_msg_put_pair(m, "outage_since", st.outage_since ? since : "none")) < 0 ||
            (r = phi_msg_put_pair(m, "last_error", st.last_error[0] ? st.last_error : "none")) < 0 ||
            (r = put_u64(m, "users", st.users)) < 0 || (r = put_u64(m, "groups", st.groups)) < 0 ||
            (r = put_u64(m, "snapshot_generation", st.generation)) < 0 ||
            (r = phi_msg_put_pair(m, "snapshot", st.snapshot)) < 0 ||
            (r = phi_msg_put_pair(m, "snapshot_path", d->config->snapshot_path)) < 0 ||
            (r = phi_msg_put_flag(m, "sync_cookie", st.have_cookie)) < 0 ||
            (r = put_u64(m, "full_refreshes", st.full_refreshes)) < 0 ||
            (r = put_u64(m, "incremental_refreshes", st.incremental_refreshes)) < 0 ||
            (r = put_u64(m, "entries_received", st.entries_received)) < 0 ||
            (r = put_u64(m, "entries_rejected", st.entries_rejected)) < 0 ||
            (r = put_u64(m, "changes_applied", st.changes_applied)) < 0 ||
            (r = put_u64(m, "refreshes_refused", st.refreshes_refused)) < 0 ||
            (r = put_u64(m, "reconnects", st.reconnects)) < 0 ||
            (r = put_u64(m, "sync_failures", st.failures)) < 0 ||
            (r = put_u64(m, "nested_cycles", st.nested_cycles)) < 0 ||
            (r = put_u64(m, "requests", d->requests)) < 0 ||
            (r = put_u64(m, "requests_refused", d->refused)) < 0 ||
            (r = phi_msg_put_pair(m, "policy", d->policy_state[0] ? d->policy_state : "not loaded")) < 0 ||
            (d->policy && ((r = put_u64(m, "policy_rules", phi_policy_n_rules(d->policy))) < 0 ||
                           (r = put_u64(m, "policy_roles", phi_policy_n_roles(d->policy))) < 0)) ||
            (r = store_status(d, m)) < 0)
                return r;
        if (d->refusals && d->connection_notes) {
                struct phi_ratelimit_stats rs, cs;
                phi_ratelimit_get_stats(d->refusals, &rs);
                phi_ratelimit_get_stats(d->connection_notes, &cs);
                if ((r = put_u64(m, "refusals_journaled", rs.written)) < 0 ||
                    (r = put_u64(m, "refusals_suppressed", rs.suppressed)) < 0 ||
                    (r = put_u64(m, "refusal_summaries", rs.summaries)) < 0 ||
                    (r = put_u64(m, "connections", d->connections)) < 0 ||
                    (r = put_u64(m, "connections_closed", d->connections_closed)) < 0 ||
                    (r = put_u64(m, "connections_refused", d->connections_refused)) < 0 ||
                    (r = put_u64(m, "connection_notes_suppressed", cs.suppressed)) < 0)
                        return r;
        }
        if (d->verifier) {
                /* Group commit at work: requests per durable transaction. */
                uint64_t rounds, requests;
                phi_verifier_stats(d->verifier, &rounds, &requests);
                if ((r = put_u64(m, "totp_rounds", rounds)) < 0 ||
                    (r = put_u64(m, "totp_requests", requests)) < 0)
                        return r;
                /* The audit log's head: records, and how many the newest
                 * signed checkpoint covers. */
                uint64_t records, checkpoint;
                char vkey[512];
                phi_verifier_audit_state(d->verifier, &records, &checkpoint, vkey, sizeof(vkey));
                if ((r = put_u64(m, "audit_records", records)) < 0 ||
                    (r = put_u64(m, "audit_checkpoint", checkpoint)) < 0 ||
                    (r = phi_msg_put_pair(m, "audit_key", vkey)) < 0)
                        return r;
                /* Other daemons sharing the store (phiaccessd(8), FLEET). */
                uint64_t seen, applied, adopted;
                phi_verifier_fleet_state(d->verifier, &seen, &applied, &adopted);
                if ((r = put_u64(m, "fleet_changes_seq", seen)) < 0 ||
                    (r = put_u64(m, "fleet_changes_applied", applied)) < 0 ||
                    (r = put_u64(m, "audit_rounds_adopted", adopted)) < 0)
                        return r;
        }
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}

/* phictl reload: the same re-read as SIGHUP, answered with its outcome. */
static int handle_reload(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                         phi_msg **ret_reply, uint64_t *ret_ticket) {
        _cleanup_msg_ phi_msg *m = NULL;
        char text[1024];     /* fits an ERROR message (the wire takes 1,024 bytes) */
        int r;

        (void) req, (void) ret_ticket;
        if (!d->reload)
                return phi_msg_new_error(-EOPNOTSUPP, ret_reply, "this daemon cannot reload");
        r = d->reload(d->reload_data, caller->name, text, sizeof(text));
        if (r < 0)
                return phi_msg_new_error(-EINVAL, ret_reply, "%s", text);
        m = phi_msg_new(PHI_MSG_OK);
        if (!m)
                return -ENOMEM;
        if ((r = phi_msg_put_pair(m, "result", text)) < 0)
                return r;
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}

static int handle_sync(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                       phi_msg **ret_reply, uint64_t *ret_ticket) {
        uint64_t full = 0;

        (void) caller;
        if (phi_msg_get_u64(req, PHI_TAG_FULL, &full) == 0 && full > 1)
                return phi_msg_new_error(-EINVAL, ret_reply, "full must be 0 or 1");
        phi_log(LOG_INFO, "%s sync requested by %s", full ? "full" : "incremental", caller->name);
        *ret_reply = NULL;
        *ret_ticket = phi_sync_request(d->sync, full == 1);
        return 0;
}

/* What the verifier adds to a USER_INFO after the groups: the token's state,
 * a lockout's end and a ticket's deadline, about 100 bytes. */
#define USER_SHOW_ROOM 256

static int handle_user_show(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket) {
        _cleanup_msg_ phi_msg *m = NULL;
        struct phi_user u = { 0 };
        const char *name = NULL;
        char **groups = NULL;
        size_t n_groups = 0;
        bool local = false;
        int r;

        (void) caller;
        if (phi_msg_get_str(req, PHI_TAG_USER, &name) < 0 || !phi_name_valid(name))
                return phi_msg_new_error(-EINVAL, ret_reply, "not a valid user name");
        r = phi_store_user_get(d->store, name, &u);
        /* A local account is a user of this host too: it logs in, and may enrol. */
        if (r == -ENOENT) {
                r = phi_local_user_get(d->config->passwd_file, name, &u);
                local = r == 0;
        }
        if (r == -ENOENT)
                return phi_msg_new_error(-ENOENT, ret_reply, "no user named '%s' in the directory or in %s", name,
                                         d->config->passwd_file);
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot read the store: %s", phi_errno_text(r));
        r = phi_store_user_groups(d->store, name, &groups, &n_groups);
        if (r < 0)
                goto out;
        m = phi_msg_new(PHI_MSG_USER_INFO);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = phi_msg_put_str(m, PHI_TAG_USER, u.name)) < 0 ||
            (r = phi_msg_put_u64(m, PHI_TAG_UID, u.uid)) < 0 ||
            (r = phi_msg_put_u64(m, PHI_TAG_GID, u.gid)) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_GECOS, u.gecos)) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_HOME, u.home)) < 0 ||
            (r = phi_msg_put_str(m, PHI_TAG_SHELL, u.shell)) < 0 ||
            (u.dn && (r = phi_msg_put_str(m, PHI_TAG_DN, u.dn)) < 0) ||
            (r = phi_msg_put_pair(m, "source", local ? "local" : "directory")) < 0)
                goto out;
        /* A user in thousands of groups: the reply lists what fits, and keeps
         * room for the token's state. */
        for (size_t i = 0; i < n_groups && r >= 0; i++)
                if (phi_msg_room(m) >= strlen(groups[i]) + PHI_WIRE_FIELD_HEADER + USER_SHOW_ROOM)
                        r = phi_msg_put_str(m, PHI_TAG_GROUP, groups[i]);
        if (r < 0)
                goto out;
        if (!d->verifier) {
                /* Without the master key nothing reads the TOTP records. */
                if ((r = phi_msg_put_str(m, PHI_TAG_TOKEN, "unavailable")) >= 0)
                        *ret_reply = PHI_TAKE_PTR(m);
                goto out;
        }
        {
                /* The verifier owns every TOTP read; it finishes the reply. */
                struct phi_verify_request q = { .kind = PHI_VERIFY_SHOW, .info = m };

                snprintf(q.user, sizeof(q.user), "%s", u.name);
                snprintf(q.actor, sizeof(q.actor), "%s", caller->name);
                r = phi_verifier_submit(d->verifier, &q, ret_ticket);
                if (r == 0)
                        m = NULL;   /* the verifier's now */
                else if (r == -ENOBUFS)
                        r = -EBUSY;
        }
out:
        phi_user_clear(&u);
        phi_strv_free(groups, n_groups);
        if (r < 0 && !*ret_reply)
                return phi_msg_new_error(r, ret_reply, "cannot answer: %s", phi_errno_text(r));
        return 0;
}

/* Room one session takes at most in a reply: its pairs with their headers. */
#define SESSION_ROOM 1200
/* Sessions one reply holds for certain. */
#define SESSIONS_PAGE (PHI_WIRE_MAX_BODY / SESSION_ROOM - 1)

/* One page of the open sessions, in id order after the one asked for; "more"
 * says whether to ask again after the last. */
static int handle_sessions(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                           phi_msg **ret_reply, uint64_t *ret_ticket) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        struct phi_session *list = NULL;
        const char *after = "";
        char opened[32];
        size_t n = 0, shown = 0;
        int r;

        (void) caller, (void) ret_ticket;
        if (!m)
                return -ENOMEM;
        if (phi_msg_get_str(req, PHI_TAG_SESSION, &after) == 0 && !phi_session_id_valid(after))
                return phi_msg_new_error(-EINVAL, ret_reply, "not a session id: %s", after);
        /* One more than a page tells whether there are more. The page stops
         * there even when the rows are short and the reply has room left:
         * the extra row is only looked at, and anything after it was not
         * read, so showing it would make "more" false with sessions unlisted. */
        r = phi_store_session_list(d->store, NULL, after, SESSIONS_PAGE + 1, &list, &n);
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot read the sessions: %s", phi_errno_text(r));
        for (size_t i = 0; i < n && i < SESSIONS_PAGE && r >= 0 && phi_msg_room(m) >= SESSION_ROOM + 64;
             i++, shown++) {
                const struct phi_session *x = &list[i];
                format_time(x->opened, opened, sizeof(opened));
                if ((r = phi_msg_put_pair(m, "session", x->id)) < 0 || (r = phi_msg_put_pair(m, "user", x->user)) < 0 ||
                    (r = phi_msg_put_pair(m, "service", x->service)) < 0 ||
                    (r = phi_msg_put_pair(m, "rhost", x->rhost)) < 0 || (r = phi_msg_put_pair(m, "tty", x->tty)) < 0 ||
                    (r = phi_msg_put_pair(m, "host", x->host)) < 0 || (r = phi_msg_put_number(m, "pid", x->pid)) < 0 ||
                    (r = phi_msg_put_pair(m, "opened", opened)) < 0)
                        break;
        }
        if (r >= 0)
                r = phi_msg_put_flag(m, "more", shown < n);
        free(list);
        if (r < 0)
                return phi_msg_new_error(r, ret_reply, "cannot list the sessions: %s", phi_errno_text(r));
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}
