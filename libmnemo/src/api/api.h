/*
 * api.h -- what the files of api/ share: the default pool (api/region.cc).
 */
#ifndef MNEMO_API_API_H
#define MNEMO_API_API_H

#include "mnemosyne.h"

namespace mnemo {

/* Called by mnemo_pool_close(): the default pool may be closed by its user. */
void default_pool_forget(mnemo_pool *pool);
/* strict.cc: install strict mode's SIGSEGV handler (once per process;
 * it stays, and passes on every fault that is not a strict one). */
void strict_handler_install();
/* The default pool if it is open, else mnemo_default_pool() (which opens
 * it): no PLT call on pmalloc's path. */
mnemo_pool *default_pool();

} // namespace mnemo

#endif
