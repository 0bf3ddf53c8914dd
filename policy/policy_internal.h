/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The parsed policy as the parser builds it and the evaluator reads it. Nothing
 * here changes after phi_policy_parse() returns. */

#include "phi/policy.h"

struct uid_range {
        uint32_t lo, hi;
};

struct policy_rule {
        char *name;
        char *description;
        unsigned line;
        bool deny;
        bool every_user;                /* users = * */
        char **users;
        size_t n_users;
        char **groups;
        size_t n_groups;
        struct uid_range *uids;
        size_t n_uids;
        bool every_service;             /* services = * */
        char **services;
        size_t n_services;
        char **hosts;                   /* shell patterns (policy_host_match) */
        size_t n_hosts;
        bool has_from, has_until;
        int64_t valid_from, valid_until;
};

struct policy_role {
        struct phi_policy_role pub;
        char *name, *description, *grant_group;
        char **eligible_groups, **approver_groups, **hosts;
};

/* Names to the rules that name them: slots of an open-addressing hash table,
 * each pointing at a run of rule indices (ascending) in ids. */
struct name_slot {
        const char *name;               /* NULL: empty slot */
        uint32_t start, count;
};

struct name_index {
        struct name_slot *slots;
        size_t mask;                    /* slots - 1, a power of two minus one */
        uint32_t *ids;
};

struct uid_entry {
        struct uid_range range;
        uint32_t rule;
};

/* What a decision tests first for every candidate rule, packed together so
 * that rejecting a candidate touches one small array. */
struct rule_hot {
        uint64_t services;              /* service bits (policy_service_bit); every bit for services = * */
        bool deny;
};

/* Services named by the rules get bits 0..62; bit 63 stands for every other
 * service, so that services = * (all bits) matches a service no rule names.
 * A policy naming more services than that tests the names one by one. */
#define POLICY_SERVICE_BITS 63
#define POLICY_OTHER_SERVICE (UINT64_C(1) << POLICY_SERVICE_BITS)

struct phi_policy {
        unsigned refcount;
        struct policy_rule **rules;
        size_t n_rules;
        struct policy_role **roles;
        size_t n_roles;
        /* built once the text is valid */
        struct name_index by_user, by_group;
        uint32_t *every_user_rules;
        size_t n_every_user_rules;
        struct uid_entry *by_uid;
        size_t n_by_uid;
        struct rule_hot *hot;           /* one per rule */
        const char *service_names[POLICY_SERVICE_BITS];
        size_t n_service_names;
        bool service_bits;              /* false: too many services for the bits */
};

/* The bit of a query's service (POLICY_OTHER_SERVICE if no rule names it). */
uint64_t policy_service_bit(const struct phi_policy *p, const char *service) _phi_nonnull_;

int policy_index_build(struct phi_policy *p) _phi_warn_unused_ _phi_nonnull_;
void policy_index_free(struct phi_policy *p) _phi_nonnull_;
/* The run of rule indices that name `name`, or NULL with *ret_count = 0. */
const uint32_t *policy_index_lookup(const struct name_index *ix, const char *name, size_t *ret_count)
        _phi_nonnull_;

/* Shapes of the names the file and the questions carry. */
bool policy_service_valid(const char *s) _phi_nonnull_;
bool policy_host_valid(const char *s) _phi_nonnull_;
bool policy_host_pattern_valid(const char *s) _phi_nonnull_;
/* fnmatch(pattern, host, FNM_CASEFOLD) in the C locale, for the patterns the parser accepts. */
bool policy_host_match(const char *pattern, const char *host) _phi_nonnull_;
