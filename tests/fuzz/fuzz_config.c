/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Feeds arbitrary text to phiaccessd's config parser. Whatever the input, the
 * parser must either accept it with every required value set or report at
 * least one error, and never read or write out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct phi_config_errors errors = { 0 };
        struct phi_config *c = NULL;
        char *text;
        int r;

        if (size > 64 * 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;
        r = phi_config_load_string("fuzz.conf", text, &c, &errors);
        if (r == 0) {
                if (!c || c->n_uris == 0 || !c->base || !c->user_base || !c->group_base ||
                    errors.n != 0)
                        abort();
                phi_config_unref(c);
        } else if (r == -EINVAL && errors.n == 0 && errors.dropped == 0)
                abort();
        phi_config_errors_clear(&errors);
        free(text);
        return 0;
}
