/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "journal.h"
#include "localfiles.h"
#include "phi/snapshot.h"
#include "snapshot_publish.h"

int phi_snapshot_publish(const struct phi_identities *ids, const struct phi_resolved *res,
                         const struct phi_config *c, uint64_t generation,
                         struct phi_publish_stats *ret_stats) {
        _cleanup_snapshot_builder_ phi_snapshot_builder *b = NULL;
        struct phi_local_db lu = { 0 }, lg = { 0 };
        struct phi_publish_stats st = { 0 };
        bool *group_in = NULL;
        int r;

        /* A local account always wins: a directory entry that reuses its name or id
         * would let the directory impersonate it (files comes first in
         * nsswitch.conf, but getpwuid of a shared uid would be ambiguous). */
        if ((r = phi_local_users_load(c->passwd_file, &lu)) < 0 ||
            (r = phi_local_groups_load(c->group_file, &lg)) < 0 ||
            (r = phi_snapshot_builder_new(&b)) < 0 ||
            /* Readers check the floor again, so a uid 0 can never come from the file. */
            (r = phi_snapshot_builder_set_min_ids(b, (uid_t) c->min_uid, (gid_t) c->min_gid)) < 0)
                goto out;
        /* The low primary gids the admin allows go into the header too, so the
         * module holds users to the same rule as the sync did. */
        {
                gid_t allowed[PHI_CONFIG_MAX_PRIMARY_GIDS];
                for (size_t i = 0; i < c->n_primary_gids_allowed; i++)
                        allowed[i] = c->primary_gids_allowed[i];
                if ((r = phi_snapshot_builder_set_primary_gids(b, allowed, c->n_primary_gids_allowed)) < 0)
                        goto out;
        }
        group_in = calloc(ids->n_groups + 1, sizeof(bool));
        if (!group_in) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < ids->n_users; i++) {
                const struct phi_user *u = &ids->users[i];
                if (u->uid < c->min_uid || !phi_config_primary_gid_allowed(c, u->gid) ||
                    phi_local_db_has_name(&lu, u->name) ||
                    phi_local_db_has_id(&lu, u->uid)) {
                        st.shadowed++;
                        continue;
                }
                r = phi_snapshot_add_user(b, u->name, u->uid, u->gid, u->gecos, u->home, u->shell);
                if (r == -EINVAL || r == -EEXIST) {
                        st.shadowed++;
                        continue;
                }
                if (r < 0)
                        goto out;
                st.users++;
        }
        for (size_t i = 0; i < ids->n_groups; i++) {
                const struct phi_group *g = &ids->groups[i];
                if (g->gid < c->min_gid || phi_local_db_has_name(&lg, g->name) ||
                    phi_local_db_has_id(&lg, g->gid)) {
                        st.shadowed++;
                        continue;
                }
                r = phi_snapshot_add_group(b, g->name, g->gid);
                if (r == -EINVAL || r == -EEXIST) {
                        st.shadowed++;
                        continue;
                }
                if (r < 0)
                        goto out;
                group_in[i] = true;
                st.groups++;
        }
        for (size_t i = 0; i < res->n_groups && i < ids->n_groups; i++) {
                if (!group_in[i])
                        continue;
                for (size_t k = 0; k < res->groups[i].n; k++) {
                        r = phi_snapshot_add_member(b, ids->groups[i].name, res->groups[i].names[k], 0);
                        if (r == -EINVAL || r == -EEXIST)
                                continue;
                        if (r < 0)
                                goto out;
                        st.members++;
                }
        }
        r = phi_snapshot_write(b, c->snapshot_path, generation);
        if (r >= 0 && ret_stats)
                *ret_stats = st;
out:
        free(group_in);
        phi_local_db_clear(&lu);
        phi_local_db_clear(&lg);
        return r;
}
