/*
 * backends.h -- constructors of the SCM backends (one file each).
 * pre (all): fd is open read-write on the pool file and outlives the device;
 * [base, base+window) is page aligned.
 */
#ifndef MNEMO_SCM_BACKENDS_H
#define MNEMO_SCM_BACKENDS_H

#include "scm/scm.h"

namespace mnemo::scm {

int open_file(int fd, const config &cfg, void *base, size_t window,
	      std::unique_ptr<device> *out);
int open_dax(int fd, void *base, size_t window, std::unique_ptr<device> *out);
int open_sim(int fd, void *base, size_t window, std::unique_ptr<device> *out);
/* -ENODEV when /dev/mnemo cannot be opened (open_device then falls back to
 * the file backend). */
int open_kmod(int fd, void *base, size_t window, std::unique_ptr<device> *out);

} // namespace mnemo::scm

#endif
