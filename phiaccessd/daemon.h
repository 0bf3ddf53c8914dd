/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the socket thread's request handlers share. */

#include <stdint.h>

#include "config.h"
#include "store.h"
#include "sync.h"
#include "verifier.h"

struct phi_daemon {
        struct phi_config *config;  /* replaced on SIGHUP */
        phi_store *store;           /* the socket thread's own handle */
        phi_sync *sync;
        uint64_t started;           /* Unix seconds */
        uint64_t requests;
        uint64_t refused;
        phi_verifier *verifier;     /* TOTP; NULL without a master key */
};
