/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "events.h"
#include "journal.h"
#include "localfiles.h"
#include "phi/fs.h"
#include "policy_state.h"
#include "store.h"
#include "verifier.h"

static void error_at0(struct phi_policy_errors *errors, const char *path, const char *fmt, ...)
        _phi_printf_(3, 4);
static void error_at0(struct phi_policy_errors *errors, const char *path, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        if (errors->n >= PHI_POLICY_MAX_ERRORS) {
                errors->dropped++;
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        errors->items[errors->n].file = strdup(path);
        errors->items[errors->n].line = 0;
        errors->items[errors->n].message = strdup(msg);
        if (!errors->items[errors->n].file || !errors->items[errors->n].message) {
                free(errors->items[errors->n].file);
                free(errors->items[errors->n].message);
                errors->dropped++;
                return;
        }
        errors->n++;
}

int phi_policy_file_load(const char *path, struct phi_policy **ret, struct phi_policy_errors *errors) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        const char *reason = NULL;
        size_t len = 0;
        ssize_t n;

        fd = phi_config_open_trusted(path, false, &reason);
        if (fd == -ENOENT)
                return -ENOENT;
        if (fd < 0) {
                error_at0(errors, path, "%s", reason ? reason : phi_errno_text(fd));
                return fd;
        }
        /* One byte more than the library takes, so that a longer file is
         * reported as too large instead of being parsed cut short. */
        text = malloc(PHI_POLICY_MAX_SIZE + 1);
        if (!text)
                return -ENOMEM;
        while (len <= PHI_POLICY_MAX_SIZE && (n = read(fd, text + len, PHI_POLICY_MAX_SIZE + 1 - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        error_at0(errors, path, "cannot read it: %s", phi_errno_text(-errno));
                        return -EIO;
                }
                len += (size_t) n;
        }
        return phi_policy_parse(text, len, path, ret, errors);
}

static void format_time(uint64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "%llu", (unsigned long long) t);
}

static void journal_load(const char *path, const char *actor, const char *outcome, int priority,
                         const struct phi_policy *p, const char *reason, const char *message) {
        char rules[24] = "", roles[24] = "";
        const struct phi_journal_field fields[] = {
                { "PHI_POLICY", path },
                { "PHI_ACTOR", actor },
                { "PHI_OUTCOME", outcome },
                { "PHI_RULES", p ? rules : NULL },
                { "PHI_ROLES", p ? roles : NULL },
                { "PHI_REASON", reason },
        };

        if (p) {
                snprintf(rules, sizeof(rules), "%zu", phi_policy_n_rules(p));
                snprintf(roles, sizeof(roles), "%zu", phi_policy_n_roles(p));
        }
        phi_journal_event(PHI_EVENT_POLICY_RELOAD, priority, fields, PHI_ELEMENTSOF(fields), "%s", message);
}

int phi_daemon_policy_load(struct phi_daemon *d, bool at_start, const char *actor, char *ret_text,
                           size_t text_len) {
        struct phi_policy_errors errors = { 0 };
        struct phi_policy *p = NULL;
        const char *path = d->config->policy_path;
        char first[PHI_POLICY_REASON_MAX] = "", since[32];
        int r;

        r = phi_policy_file_load(path, &p, &errors);
        if (r == -ENOENT && at_start) {
                /* No file: the empty policy, which lets nobody in. */
                r = phi_policy_parse("", 0, path, &p, &errors);
                if (r == 0) {
                        phi_policy_unref(d->policy);
                        d->policy = p;
                        if (d->verifier)
                                phi_verifier_set_access(d->verifier, p);
                        d->policy_loaded_at = (uint64_t) time(NULL);
                        snprintf(d->policy_state, sizeof(d->policy_state),
                                 "missing: %s does not exist, every access question is answered no", path);
                        snprintf(ret_text, text_len, "%s", d->policy_state);
                        journal_load(path, actor, "missing", LOG_WARNING, p, "no policy file",
                                     d->policy_state);
                        r = -ENOENT;
                }
                goto out;
        }
        if (r < 0) {
                if (r == -ENOENT)
                        snprintf(first, sizeof(first), "%s does not exist", path);
                else if (errors.n > 0)
                        snprintf(first, sizeof(first), "%s:%u: %s%s", errors.items[0].file, errors.items[0].line,
                                 errors.items[0].message,
                                 errors.n + errors.dropped > 1 ? " (and more: phiaccessd --check-config)" : "");
                else
                        snprintf(first, sizeof(first), "%s: %s", path, phi_errno_text(r));
                for (size_t i = 0; i < errors.n; i++)
                        phi_log(LOG_ERR, "%s:%u: %s", errors.items[i].file, errors.items[i].line,
                                errors.items[i].message);
                if (d->policy) {
                        format_time(d->policy_loaded_at, since);
                        snprintf(d->policy_state, sizeof(d->policy_state),
                                 "refused: %.300s; the policy loaded %s stays in force", first, since);
                } else
                        snprintf(d->policy_state, sizeof(d->policy_state), "refused: %.300s", first);
                snprintf(ret_text, text_len, "%s", d->policy_state);
                journal_load(path, actor, "refused", LOG_ERR, d->policy, first, d->policy_state);
                goto out;
        }
        phi_policy_unref(d->policy);
        d->policy = p;
        if (d->verifier)
                phi_verifier_set_access(d->verifier, p);
        d->policy_loaded_at = (uint64_t) time(NULL);
        snprintf(d->policy_state, sizeof(d->policy_state), "loaded from %s: %zu rules, %zu roles", path,
                 phi_policy_n_rules(p), phi_policy_n_roles(p));
        snprintf(ret_text, text_len, "%s", d->policy_state);
        journal_load(path, actor, "ok", LOG_NOTICE, p, NULL, d->policy_state);
out:
        phi_policy_errors_clear(&errors);
        return r;
}

int phi_handle_policy_check(struct phi_daemon *d, const struct phi_caller *caller, const phi_msg *req,
                            phi_msg **ret_reply, uint64_t *ret_ticket) {
        _cleanup_msg_ phi_msg *m = phi_msg_new(PHI_MSG_OK);
        struct phi_policy_decision dec;
        const char *name, *service, *host;
        char hostname[HOST_NAME_MAX + 1];
        int r;

        (void) caller, (void) ret_ticket;
        if (!m)
                return -ENOMEM;
        if (phi_msg_get_str(req, PHI_TAG_USER, &name) < 0 || phi_msg_get_str(req, PHI_TAG_SERVICE, &service) < 0)
                return phi_msg_new_error(-EPROTO, ret_reply, "a policy check names a user and a service");
        if (phi_msg_get_str(req, PHI_TAG_HOST, &host) < 0) {
                /* This host: the policy is this host's, asked about itself. */
                if ((r = phi_access_hostname(hostname, sizeof(hostname))) < 0)
                        return r;
                host = hostname;
        }
        if (!d->policy)
                return phi_msg_new_error(-EAGAIN, ret_reply, "no policy is loaded");
        /* The very function pam_phi's account check runs, so the two agree. */
        r = phi_access_decide(d->policy, d->store, d->config->passwd_file, d->config->group_file, name, service,
                              host, (int64_t) time(NULL), &dec);
        if (r < 0)
                return r;
        if ((r = phi_msg_put_pair(m, "user", name)) < 0 || (r = phi_msg_put_pair(m, "service", service)) < 0 ||
            (r = phi_msg_put_pair(m, "host", host)) < 0 || (r = phi_msg_put_flag(m, "allowed", dec.allowed)) < 0 ||
            (r = phi_msg_put_pair(m, "rule", dec.rule)) < 0 ||
            (r = phi_msg_put_pair(m, "refusal", dec.allowed ? "none" : phi_policy_refusal_name(dec.refusal))) < 0 ||
            (r = phi_msg_put_pair(m, "reason", dec.reason)) < 0)
                return r;
        *ret_reply = PHI_TAKE_PTR(m);
        return 0;
}
