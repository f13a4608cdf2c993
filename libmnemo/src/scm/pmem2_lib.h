/*
 * pmem2_lib.h -- libpmem2, loaded on first use.  Only the dax backend
 * needs it, and linking it would make every program that loads libmnemo
 * (every one under the interposer) load libpmem2 and its chain (libndctl,
 * libdaxctl, libudev, libkmod, libcrypto, ...) at start-up: about 1.2 ms.
 */
#ifndef MNEMO_SCM_PMEM2_LIB_H
#define MNEMO_SCM_PMEM2_LIB_H

#include <cstddef>

/* libpmem2's ABI as of 1.9 (its upstream is archived, so it no longer
 * changes): declared here so that building libmnemo needs no libpmem2
 * headers; running the dax backend needs libpmem2.so.1. */
struct pmem2_config;
struct pmem2_map;
struct pmem2_source;
struct pmem2_vm_reservation;
enum pmem2_granularity {
	PMEM2_GRANULARITY_BYTE,
	PMEM2_GRANULARITY_CACHE_LINE,
	PMEM2_GRANULARITY_PAGE,
};
inline constexpr int PMEM2_E_UNKNOWN = -100000;
inline constexpr int PMEM2_E_GRANULARITY_NOT_SUPPORTED = -100009;

namespace mnemo::scm {

/* The entry points the dax backend calls (libpmem2's prototypes). */
struct pmem2_lib {
	int (*config_new)(pmem2_config **cfg);
	int (*config_delete)(pmem2_config **cfg);
	int (*config_set_required_store_granularity)(pmem2_config *cfg,
						     pmem2_granularity g);
	int (*config_set_offset)(pmem2_config *cfg, size_t offset);
	int (*config_set_length)(pmem2_config *cfg, size_t length);
	int (*config_set_vm_reservation)(pmem2_config *cfg,
					 pmem2_vm_reservation *rsv,
					 size_t offset);
	int (*map_new)(pmem2_map **map, const pmem2_config *cfg,
		       const pmem2_source *src);
	int (*map_delete)(pmem2_map **map);
	size_t (*map_get_size)(pmem2_map *map);
	pmem2_granularity (*map_get_store_granularity)(pmem2_map *map);
	int (*source_from_fd)(pmem2_source **src, int fd);
	int (*source_get_fd)(const pmem2_source *src, int *fd);
	int (*source_delete)(pmem2_source **src);
	int (*vm_reservation_new)(pmem2_vm_reservation **rsv, void *addr,
				  size_t size);
	int (*vm_reservation_delete)(pmem2_vm_reservation **rsv);
	void *(*vm_reservation_get_address)(pmem2_vm_reservation *rsv);
	size_t (*vm_reservation_get_size)(pmem2_vm_reservation *rsv);
	const char *(*errormsg)(void);
};

/* *lib = the library (loaded once, never unloaded): 0, or -ENOTSUP with
 * a message naming what is missing. */
int load_pmem2(const pmem2_lib **lib);

} // namespace mnemo::scm

#endif
