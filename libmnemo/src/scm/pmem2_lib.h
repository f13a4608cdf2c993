/*
 * pmem2_lib.h -- libpmem2, loaded on first use.  Only the dax backend
 * needs it, and linking it would make every program that loads libmnemo
 * (every one under the interposer) load libpmem2 and its chain (libndctl,
 * libdaxctl, libudev, libkmod, libcrypto, ...) at start-up: about 1.2 ms.
 */
#ifndef MNEMO_SCM_PMEM2_LIB_H
#define MNEMO_SCM_PMEM2_LIB_H

#include <libpmem2.h>

namespace mnemo::scm {

/* The entry points the dax backend calls (libpmem2.h's prototypes). */
struct pmem2_lib {
#define MNEMO_PMEM2_FN(f) decltype(&::pmem2_##f) f
	MNEMO_PMEM2_FN(config_new);
	MNEMO_PMEM2_FN(config_delete);
	MNEMO_PMEM2_FN(config_set_required_store_granularity);
	MNEMO_PMEM2_FN(config_set_offset);
	MNEMO_PMEM2_FN(config_set_length);
	MNEMO_PMEM2_FN(config_set_vm_reservation);
	MNEMO_PMEM2_FN(map_new);
	MNEMO_PMEM2_FN(map_delete);
	MNEMO_PMEM2_FN(map_get_size);
	MNEMO_PMEM2_FN(map_get_store_granularity);
	MNEMO_PMEM2_FN(source_from_fd);
	MNEMO_PMEM2_FN(source_get_fd);
	MNEMO_PMEM2_FN(source_delete);
	MNEMO_PMEM2_FN(vm_reservation_new);
	MNEMO_PMEM2_FN(vm_reservation_delete);
	MNEMO_PMEM2_FN(vm_reservation_get_address);
	MNEMO_PMEM2_FN(vm_reservation_get_size);
	MNEMO_PMEM2_FN(errormsg);
#undef MNEMO_PMEM2_FN
};

/* *lib = the library (loaded once, never unloaded): 0, or -ENOTSUP with
 * a message naming what is missing. */
int load_pmem2(const pmem2_lib **lib);

} // namespace mnemo::scm

#endif
