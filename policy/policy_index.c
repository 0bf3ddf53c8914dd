/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The name index of a parsed policy: from a user or group name to the rules
 * that name it, so that a decision looks at the rules that can concern the
 * user and not at all of them. Built once per parse; read-only afterwards. */

#include "policy_internal.h"

struct pair {
        const char *name;
        uint32_t rule;
};

static int pair_cmp(const void *a, const void *b) {
        const struct pair *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* FNV-1a: names are short and chosen by the admin, not by an attacker who
 * could aim at collisions (the policy file is root's). */
static uint64_t name_hash(const char *s) {
        uint64_t h = 1469598103934665603ull;

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 1099511628211ull;
        }
        return h;
}

static int index_build(struct name_index *ix, struct pair *pairs, size_t n) {
        size_t unique = 0, size = 1, k = 0;

        if (n == 0)
                return 0;
        qsort(pairs, n, sizeof(*pairs), pair_cmp);
        for (size_t i = 0; i < n; i++)
                if (i == 0 || strcmp(pairs[i].name, pairs[i - 1].name) != 0)
                        unique++;
        while (size < unique * 2)
                size <<= 1;
        ix->slots = calloc(size, sizeof(*ix->slots));
        ix->ids = calloc(n, sizeof(*ix->ids));
        if (!ix->slots || !ix->ids)
                return -ENOMEM;
        ix->mask = size - 1;
        for (size_t i = 0; i < n;) {
                size_t j = i, slot;
                /* one name's run; the same rule may name it twice */
                uint32_t start = (uint32_t) k;
                for (; j < n && strcmp(pairs[j].name, pairs[i].name) == 0; j++)
                        if (k == start || ix->ids[k - 1] != pairs[j].rule)
                                ix->ids[k++] = pairs[j].rule;
                slot = name_hash(pairs[i].name) & ix->mask;
                while (ix->slots[slot].name)
                        slot = (slot + 1) & ix->mask;
                ix->slots[slot] = (struct name_slot){ pairs[i].name, start, (uint32_t) (k - start) };
                i = j;
        }
        return 0;
}

const uint32_t *policy_index_lookup(const struct name_index *ix, const char *name, size_t *ret_count) {
        size_t slot;

        *ret_count = 0;
        if (!ix->slots)
                return NULL;
        slot = name_hash(name) & ix->mask;
        for (; ix->slots[slot].name; slot = (slot + 1) & ix->mask)
                if (strcmp(ix->slots[slot].name, name) == 0) {
                        *ret_count = ix->slots[slot].count;
                        return ix->ids + ix->slots[slot].start;
                }
        return NULL;
}

uint64_t policy_service_bit(const struct phi_policy *p, const char *service) {
        for (size_t i = 0; i < p->n_service_names; i++)
                if (strcmp(p->service_names[i], service) == 0)
                        return UINT64_C(1) << i;
        return POLICY_OTHER_SERVICE;
}

static int services_build(struct phi_policy *p) {
        p->hot = calloc(p->n_rules ? p->n_rules : 1, sizeof(*p->hot));
        if (!p->hot)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_rules; i++)
                p->hot[i].deny = p->rules[i]->deny;
        p->service_bits = true;
        for (size_t i = 0; i < p->n_rules && p->service_bits; i++) {
                const struct policy_rule *r = p->rules[i];
                if (r->every_service) {
                        p->hot[i].services = UINT64_MAX;
                        continue;
                }
                for (size_t j = 0; j < r->n_services; j++) {
                        uint64_t bit = policy_service_bit(p, r->services[j]);
                        if (bit == POLICY_OTHER_SERVICE) {
                                if (p->n_service_names == POLICY_SERVICE_BITS) {
                                        p->service_bits = false;
                                        break;
                                }
                                bit = UINT64_C(1) << p->n_service_names;
                                p->service_names[p->n_service_names++] = r->services[j];
                        }
                        p->hot[i].services |= bit;
                }
        }
        return 0;
}

int policy_index_build(struct phi_policy *p) {
        _cleanup_free_ struct pair *users = NULL, *groups = NULL;
        size_t n_users = 0, n_groups = 0, n_uids = 0;
        int r;

        for (size_t i = 0; i < p->n_rules; i++) {
                n_users += p->rules[i]->n_users;
                n_groups += p->rules[i]->n_groups;
                n_uids += p->rules[i]->n_uids;
                if (p->rules[i]->every_user)
                        p->n_every_user_rules++;
        }
        users = calloc(n_users ? n_users : 1, sizeof(*users));
        groups = calloc(n_groups ? n_groups : 1, sizeof(*groups));
        p->by_uid = calloc(n_uids ? n_uids : 1, sizeof(*p->by_uid));
        p->every_user_rules = calloc(p->n_every_user_rules ? p->n_every_user_rules : 1, sizeof(uint32_t));
        if (!users || !groups || !p->by_uid || !p->every_user_rules)
                return -ENOMEM;
        n_users = n_groups = 0;
        p->n_every_user_rules = 0;
        for (size_t i = 0; i < p->n_rules; i++) {
                const struct policy_rule *rule = p->rules[i];
                for (size_t j = 0; j < rule->n_users; j++)
                        users[n_users++] = (struct pair){ rule->users[j], (uint32_t) i };
                for (size_t j = 0; j < rule->n_groups; j++)
                        groups[n_groups++] = (struct pair){ rule->groups[j], (uint32_t) i };
                for (size_t j = 0; j < rule->n_uids; j++)
                        p->by_uid[p->n_by_uid++] = (struct uid_entry){ rule->uids[j], (uint32_t) i };
                if (rule->every_user)
                        p->every_user_rules[p->n_every_user_rules++] = (uint32_t) i;
        }
        if ((r = index_build(&p->by_user, users, n_users)) < 0 ||
            (r = index_build(&p->by_group, groups, n_groups)) < 0 || (r = services_build(p)) < 0)
                return r;
        return 0;
}

void policy_index_free(struct phi_policy *p) {
        free(p->by_user.slots);
        free(p->by_user.ids);
        free(p->by_group.slots);
        free(p->by_group.ids);
        free(p->every_user_rules);
        free(p->by_uid);
        free(p->hot);
}
