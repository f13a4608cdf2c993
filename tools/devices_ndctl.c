/*
 * devices_ndctl.c -- `mnemoctl devices` through libndctl and libdaxctl:
 * one row per active namespace (see mnemoctl(1) and devices.h).
 */
#include <daxctl/libdaxctl.h>
#include <ndctl/libndctl.h>
#include <stdio.h>
#include <string.h>

#include "devices.h"

static const char *mode_name(enum ndctl_namespace_mode m)
{
	switch (m) {
	case NDCTL_NS_MODE_FSDAX: return "fsdax";
	case NDCTL_NS_MODE_SECTOR: return "sector";
	case NDCTL_NS_MODE_RAW: return "raw";
	case NDCTL_NS_MODE_DEVDAX: return "devdax";
	default: return "unknown";
	}
}

/* The platform's persistence domain: what survives a power failure. */
static const char *domain_name(enum ndctl_persistence_domain d)
{
	switch (d) {
	case PERSISTENCE_NONE: return "none";
	case PERSISTENCE_MEM_CTRL: return "memory-controller";
	case PERSISTENCE_CPU_CACHE: return "cpu-cache";
	default: return "unknown";
	}
}

/* "1.00 GiB"-style size into buf. */
static const char *human_size(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", v, units[u]);
	return buf;
}

/* The device a program opens for namespace ndns: /dev/pmemN (raw, fsdax),
 * /dev/pmemNs (sector) or /dev/daxN.M (devdax); "-" if none. */
static const char *ns_device(struct ndctl_namespace *ndns)
{
	struct ndctl_pfn *pfn = ndctl_namespace_get_pfn(ndns);
	struct ndctl_btt *btt = ndctl_namespace_get_btt(ndns);
	struct ndctl_dax *dax = ndctl_namespace_get_dax(ndns);
	const char *dev = NULL;
	if (pfn)
		dev = ndctl_pfn_get_block_device(pfn);
	else if (btt)
		dev = ndctl_btt_get_block_device(btt);
	else if (dax) {
		struct daxctl_region *dr = ndctl_dax_get_daxctl_region(dax);
		struct daxctl_dev *dd;
		daxctl_dev_foreach(dr, dd) {
			dev = daxctl_dev_get_devname(dd);
			break;
		}
	} else
		dev = ndctl_namespace_get_block_device(ndns);
	return dev && *dev ? dev : "-";
}

/* Unsafe-shutdown counts of the DIMMs behind region, "n/a" where the
 * platform does not report them (e.g. emulated NVDIMMs). */
static const char *region_shutdowns(struct ndctl_region *region, char *buf,
				    size_t len)
{
	struct ndctl_mapping *m;
	size_t used = 0;
	buf[0] = '\0';
	ndctl_mapping_foreach(region, m) {
		struct ndctl_dimm *dimm = ndctl_mapping_get_dimm(m);
		long long n = dimm ? ndctl_dimm_get_dirty_shutdown(dimm) : -1;
		int w = n >= 0 ? snprintf(buf + used, len - used, "%s%lld",
					  used ? "," : "", n)
			       : snprintf(buf + used, len - used, "%sn/a",
					  used ? "," : "");
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return used ? buf : "n/a";
}

static void print_row(struct ndctl_bus *bus, struct ndctl_region *region,
		      struct ndctl_namespace *ndns)
{
	char size[32], shut[128];
	unsigned long long bytes = ndns ? ndctl_namespace_get_size(ndns)
					: ndctl_region_get_size(region);
	printf("%-8s %-9s %-14s %-7s %-11s %-10s %-18s %s\n",
	       ndctl_bus_get_devname(bus), ndctl_region_get_devname(region),
	       ndns ? ndctl_namespace_get_devname(ndns) : "-",
	       ndns ? mode_name(ndctl_namespace_get_mode(ndns)) : "-",
	       human_size(bytes, size, sizeof(size)),
	       ndns ? ns_device(ndns) : "-",
	       domain_name(ndctl_region_get_persistence_domain(region)),
	       region_shutdowns(region, shut, sizeof(shut)));
}

/* One row per active namespace; a region without one gets a row too. */
static int list_devices(struct ndctl_ctx *ctx)
{
	struct ndctl_bus *bus;
	int rows = 0;
	ndctl_bus_foreach(ctx, bus) {
		struct ndctl_region *region;
		ndctl_region_foreach(bus, region) {
			struct ndctl_namespace *ndns;
			int here = 0;
			if (rows == 0)
				printf("%-8s %-9s %-14s %-7s %-11s %-10s %-18s %s\n",
				       "BUS", "REGION", "NAMESPACE", "MODE", "SIZE",
				       "DEVICE", "PERSISTENCE", "UNSAFE-SHUTDOWNS");
			ndctl_namespace_foreach(region, ndns) {
				if (!ndctl_namespace_is_active(ndns) ||
				    ndctl_namespace_get_size(ndns) == 0)
					continue;
				print_row(bus, region, ndns);
				here++;
			}
			if (!here)
				print_row(bus, region, NULL);
			rows++;
		}
	}
	return rows;
}

int devices_list(void)
{
	struct ndctl_ctx *ctx;
	int rc = ndctl_new(&ctx);
	if (rc < 0) {
		fprintf(stderr, "mnemoctl devices: cannot use libndctl: %s\n",
			strerror(-rc));
		return 1;
	}
	if (list_devices(ctx) == 0)
		printf("no persistent-memory devices (no NVDIMM regions in "
		       "/sys/bus/nd)\n");
	ndctl_unref(ctx);
	return 0;
}
