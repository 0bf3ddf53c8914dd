#!/usr/bin/env bash
# The store conformance sequence (store_conformance.c) on the SQLite backend:
# the reference the PostgreSQL backend is held to (store_pg_test.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/harness.bash
source "$(dirname "$0")/../lib/harness.bash"
phi_harness_init "$@"

conf=$PHI_BUILD_DIR/tests/integration/store_conformance
out=$("$conf" sqlite "$PHI_TMP/phi.db" - all 2>&1) || phi_fail "the conformance sequence on SQLite" "$out"
phi_assert_contains "$out" "failed" "the sequence ran to its end"
phi_assert_match "$out" "sqlite store conformance: [0-9]+ checks passed, 0 failed" "every check passed on SQLite"
phi_assert_eq "$("$conf" sqlite "$PHI_TMP/phi.db" - token-get racer)" "ok 2000" \
    "the race's winner left its watermark, read by a new handle"
