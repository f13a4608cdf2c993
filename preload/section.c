/*
 * section.c -- binding each loaded object's `mnemo_persistent` section to
 * a region of the pool, without copying: the pages that hold the section
 * are replaced by an alias of the region's image pages
 * (mnemo_region_alias), so a store to a persistent global is a store to
 * the pool.
 *
 * Keys.  An object is known by its real path; its region is found through
 * the root "elf:HASH" (HASH = FNV-1a of the path; the path itself is in the
 * region and checked, so a hash collision is refused, never shared).
 * Another program has another path, so it never sees this one's data.
 *
 * Region "elf:HASH:P" (P = parity of the generation GEN): header pages (struct sec_hdr, the variable table,
 * the strings: the path first), then the image: whole pages, laid out as
 * the section's pages in memory (the section starts page_off bytes into
 * the first one).  Bytes of those pages outside the section belong to
 * neighbouring variables: they are copied from memory into the image
 * before every bind, so neighbours keep their load-time values (their
 * stores then reach the pool, harmlessly, and are overwritten at the next
 * start).
 *
 * Rebuilt program.  If the section's layout (place in its page, size,
 * variables) differs from the header's, generation GEN+1 is built in the
 * object's other region: the current (initial) section bytes, with every
 * variable that kept its name and size copied from the old image.  It is
 * persisted, then the root is switched (one atomic durable store), then
 * the old region is deleted.  A crash before the switch leaves a stale
 * GEN+1, after it a stale GEN-1: either is the region of the other
 * parity, deleted at the next bind.  Variables that cannot be carried
 * over are named on stderr.
 */
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsec.h"
#include "preload.h"

#define SEC_NAME "mnemo_persistent"
#define SEC_MAGIC 0x4345534f4d454e4dull /* "MNEMOSEC" */
#define SEC_VERSION 1u
#define PG 4096ull

struct sec_hdr {
	uint64_t magic;
	uint32_t version, hdr_pages;
	uint64_t gen;
	uint64_t page_off, size, npages; /* the section and its pages */
	uint64_t nvars, strsz;           /* then vars[nvars], strings */
};

struct sec_var {
	uint64_t name; /* offset into the strings */
	uint64_t off, size;
};

/* A loaded object with a section, as found by the scan. */
struct object {
	char path[PATH_MAX];
	uintptr_t start; /* run-time address of the section */
	struct elf_sec sec;
};

/* Bound objects (for dlclose): alias address and the object's base. */
#define MAX_BOUND 256
static struct {
	uintptr_t base, at;
} g_bound[MAX_BOUND];
static pthread_mutex_t g_sec_mu = PTHREAD_MUTEX_INITIALIZER;

static struct sec_var *hvars(struct sec_hdr *h)
{
	return (struct sec_var *)(h + 1);
}

static char *hstrings(struct sec_hdr *h)
{
	return (char *)(hvars(h) + h->nvars);
}

static char *himage(struct sec_hdr *h)
{
	return (char *)h + h->hdr_pages * PG;
}

/* Whether the header at h (in a region of `bytes`) is whole and ours.
 * Every bound is checked without overflow: the region is input. */
static int hdr_valid(struct sec_hdr *h, size_t bytes, const char *path)
{
	if (bytes < PG || h->magic != SEC_MAGIC || h->version != SEC_VERSION ||
	    h->hdr_pages == 0 || h->hdr_pages > bytes / PG ||
	    h->npages == 0 || h->npages > bytes / PG - h->hdr_pages ||
	    h->page_off >= PG || h->size > h->npages * PG - h->page_off ||
	    h->nvars > bytes / sizeof(struct sec_var) || h->strsz == 0 ||
	    h->strsz > bytes)
		return 0;
	uint64_t meta = sizeof(*h) + h->nvars * sizeof(struct sec_var);
	if (meta > (uint64_t)h->hdr_pages * PG - h->strsz ||
	    hstrings(h)[h->strsz - 1] != '\0')
		return 0;
	for (uint64_t i = 0; i < h->nvars; i++) {
		struct sec_var *v = &hvars(h)[i];
		if (v->name >= h->strsz || v->off > h->size ||
		    v->size > h->size - v->off)
			return 0;
	}
	return strcmp(hstrings(h), path) == 0;
}

static void root_name(char *buf, size_t n, const char *path)
{
	snprintf(buf, n, "elf:%016llx",
		 (unsigned long long)preload_hash(path));
}

/* Two regions per object, "elf:HASH:0" and "elf:HASH:1": generation g
 * lives in the one of its parity, so a layout switch builds the other. */
static void region_name(char *buf, size_t n, const char *path, uint64_t gen)
{
	snprintf(buf, n, "elf:%016llx:%llu",
		 (unsigned long long)preload_hash(path),
		 (unsigned long long)(gen & 1));
}

/* Delete the region of generation gen's parity if it exists (a crash's
 * leftover, or the previous generation). */
static void drop_gen(const char *path, uint64_t gen)
{
	char name[MNEMO_NAME_MAX + 1];
	void *addr;
	region_name(name, sizeof(name), path, gen);
	if (mnemo_region_find(g_pool, name, &addr, NULL) == 0)
		mnemo_region_delete(g_pool, addr);
}

/* The layout of the object's section equals the header's. */
static int same_layout(struct sec_hdr *h, const struct object *o)
{
	const struct elf_sec *s = &o->sec;
	if (h->page_off != o->start % PG || h->size != s->size ||
	    h->nvars != s->nvars)
		return 0;
	for (size_t i = 0; i < s->nvars; i++) {
		struct sec_var *v = &hvars(h)[i];
		if (v->off != s->vars[i].off || v->size != s->vars[i].size ||
		    strcmp(hstrings(h) + v->name, s->vars[i].name) != 0)
			return 0;
	}
	return 1;
}

static uint64_t npages_of(const struct object *o)
{
	uint64_t lo = o->start & ~(PG - 1);
	return (o->start + o->sec.size - lo + PG - 1) / PG;
}

/* Copy the bytes of the section's pages outside the section (neighbours)
 * from memory into the image. */
static void copy_neighbours(char *img, const struct object *o)
{
	char *lo = (char *)(o->start & ~(PG - 1));
	uint64_t off = o->start % PG, end = off + o->sec.size;
	memcpy(img, lo, off);
	memcpy(img + end, lo + end, npages_of(o) * PG - end);
}

static struct sec_var *old_var(struct sec_hdr *h, const char *name)
{
	for (uint64_t i = 0; h && i < h->nvars; i++)
		if (strcmp(hstrings(h) + hvars(h)[i].name, name) == 0)
			return &hvars(h)[i];
	return NULL;
}

/* Fill the new image: the current section, then every old variable that
 * kept its name and size.  Says which ones could not be carried over. */
static void carry_over(char *img, struct sec_hdr *old, const struct object *o)
{
	memcpy(img, (char *)(o->start & ~(PG - 1)), npages_of(o) * PG);
	char *sec = img + o->start % PG;
	for (size_t i = 0; old && i < o->sec.nvars; i++) {
		const struct elf_var *v = &o->sec.vars[i];
		struct sec_var *w = old_var(old, v->name);
		if (w && w->size == v->size)
			memcpy(sec + v->off, himage(old) + old->page_off + w->off,
			       v->size);
		else if (w)
			preload_say("%s: persistent variable '%s' changed size "
				    "(%llu -> %llu bytes): it starts from its "
				    "initial value", o->path, v->name,
				    (unsigned long long)w->size,
				    (unsigned long long)v->size);
	}
	for (uint64_t i = 0; old && i < old->nvars; i++) {
		const char *nm = hstrings(old) + hvars(old)[i].name;
		int kept = 0;
		for (size_t j = 0; j < o->sec.nvars && !kept; j++)
			kept = strcmp(o->sec.vars[j].name, nm) == 0;
		if (!kept)
			preload_say("%s: persistent variable '%s' is no longer "
				    "in the program: its value is dropped",
				    o->path, nm);
	}
}

static void write_header(struct sec_hdr *h, const struct object *o,
			 uint64_t gen, uint32_t hdr_pages, uint64_t strsz)
{
	*h = (struct sec_hdr){SEC_MAGIC, SEC_VERSION, hdr_pages, gen,
			      o->start % PG, o->sec.size, npages_of(o),
			      o->sec.nvars, strsz};
	char *str = hstrings(h);
	uint64_t at = strlen(o->path) + 1;
	memcpy(str, o->path, at);
	for (size_t i = 0; i < o->sec.nvars; i++) {
		const struct elf_var *v = &o->sec.vars[i];
		hvars(h)[i] = (struct sec_var){at, v->off, v->size};
		size_t k = strlen(v->name) + 1;
		memcpy(str + at, v->name, k);
		at += k;
	}
}

/* Tests: MNEMO_PRELOAD_CRASH_AT=K kills the process (SIGKILL) at the K-th
 * step of a layout switch (tests/preload.sh crashes at every one). */
static void crash_point(int k)
{
	const char *s = getenv("MNEMO_PRELOAD_CRASH_AT");
	if (s && atoi(s) == k)
		raise(SIGKILL);
}

/* Build region GEN of o (carrying old's variables), persist it and switch
 * the root to it.  Returns its header, or NULL. */
static struct sec_hdr *build(const struct object *o, struct sec_hdr *old)
{
	uint64_t gen = old ? old->gen + 1 : 1, strsz = strlen(o->path) + 1;
	for (size_t i = 0; i < o->sec.nvars; i++)
		strsz += strlen(o->sec.vars[i].name) + 1;
	uint64_t meta = sizeof(struct sec_hdr) +
			o->sec.nvars * sizeof(struct sec_var) + strsz;
	uint32_t hdr_pages = (uint32_t)((meta + PG - 1) / PG);
	size_t bytes = (hdr_pages + npages_of(o)) * PG;
	char name[MNEMO_NAME_MAX + 1], root[MNEMO_NAME_MAX + 1];
	void *addr;
	drop_gen(o->path, gen);
	region_name(name, sizeof(name), o->path, gen);
	if (mnemo_region_create(g_pool, name, bytes, &addr) != 0)
		return NULL;
	crash_point(1);
	struct sec_hdr *h = addr;
	write_header(h, o, gen, hdr_pages, strsz);
	carry_over(himage(h), old, o);
	crash_point(2);
	mnemo_persist(h, bytes);
	crash_point(3);
	root_name(root, sizeof(root), o->path);
	if (mnemo_root_set(g_pool, root, h) != 0) {
		mnemo_region_delete(g_pool, addr);
		return NULL;
	}
	crash_point(4);
	if (old)
		mnemo_region_delete(g_pool, old);
	crash_point(5);
	return h;
}

/* The object's current region, or NULL (none yet, or *bad set).  The
 * root's pointer is only followed once it is known to be the start of
 * one of the object's two regions. */
static struct sec_hdr *current(const struct object *o, int *bad)
{
	char root[MNEMO_NAME_MAX + 1], name[MNEMO_NAME_MAX + 1];
	void *addr, *found;
	size_t bytes;
	root_name(root, sizeof(root), o->path);
	*bad = 0;
	if (mnemo_root_get(g_pool, root, &addr) != 0)
		return NULL;
	for (uint64_t parity = 0; parity < 2; parity++) {
		region_name(name, sizeof(name), o->path, parity);
		if (mnemo_region_find(g_pool, name, &found, &bytes) != 0 ||
		    found != addr)
			continue;
		struct sec_hdr *h = addr;
		if (hdr_valid(h, bytes, o->path) && (h->gen & 1) == parity)
			return h;
	}
	*bad = 1;
	return NULL;
}

static int remember(uintptr_t base, uintptr_t at)
{
	for (int i = 0; i < MAX_BOUND; i++) {
		if (!g_bound[i].at) {
			g_bound[i].base = base;
			g_bound[i].at = at;
			return 0;
		}
	}
	return -1;
}

static void forget_at(uintptr_t at)
{
	for (int i = 0; i < MAX_BOUND; i++)
		if (g_bound[i].at == at)
			g_bound[i].at = 0;
}

static int bound(uintptr_t at)
{
	for (int i = 0; i < MAX_BOUND; i++)
		if (g_bound[i].at == at)
			return 1;
	return 0;
}

/* Bind one object.  0, or -1 after saying why. */
static int bind(const struct object *o, uintptr_t base)
{
	int bad;
	uintptr_t at = o->start & ~(PG - 1);
	if (bound(at))
		return 0;
	struct sec_hdr *h = current(o, &bad);
	if (bad) {
		preload_fail("%s: its persistent region (root elf:%016llx) is "
			     "damaged or belongs to another path; not bound",
			     o->path, (unsigned long long)preload_hash(o->path));
		return -1;
	}
	if (h)
		drop_gen(o->path, h->gen + 1); /* a crash's leftover */
	if (h && same_layout(h, o))
		copy_neighbours(himage(h), o);
	else if (!(h = build(o, h))) {
		preload_fail("%s: cannot create its persistent region: %s",
			     o->path, mnemo_errormsg());
		return -1;
	}
	if (remember(base, at) != 0) {
		preload_fail("%s: more than %d objects with persistent "
			     "sections; not bound", o->path, MAX_BOUND);
		return -1;
	}
	if (mnemo_region_alias(g_pool, himage(h), h->npages * PG,
			       (void *)at) != 0) {
		forget_at(at);
		preload_fail("%s: cannot map its persistent section: %s",
			     o->path, mnemo_errormsg());
		return -1;
	}
	if (g_verbose)
		preload_say("%s: %zu variables (%llu bytes) bound at %p",
			    o->path, o->sec.nvars,
			    (unsigned long long)o->sec.size, (void *)o->start);
	return 0;
}

/* ---- scanning the loaded objects ---- */

/* Base addresses of objects already scanned (so that each dlopen reads
 * only the new files); pruned when objects go away.  Under g_sec_mu. */
static uintptr_t *g_seen;
static size_t g_nseen;

static int seen(uintptr_t base)
{
	for (size_t i = 0; i < g_nseen; i++)
		if (g_seen[i] == base)
			return 1;
	uintptr_t *s = realloc(g_seen, (g_nseen + 1) * sizeof(*s));
	if (s) {
		g_seen = s;
		g_seen[g_nseen++] = base;
	}
	return 0;
}

struct scan {
	struct object *objs;
	uintptr_t *bases;
	size_t n;
};

/* The file of a loaded object, as the loader names it. */
static void object_file(const char *dlname, char *out)
{
	if (!dlname || !*dlname)
		preload_exe(out, PATH_MAX);
	else
		snprintf(out, PATH_MAX, "%s", dlname);
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct scan *sc = arg;
	struct object o;
	const char *why = NULL;
	/* The vDSO (and nothing else glibc loads) has a name without a
	 * slash: it has no file to read. */
	if (*info->dlpi_name && !strchr(info->dlpi_name, '/'))
		return 0;
	if (seen(info->dlpi_addr))
		return 0;
	char file[PATH_MAX];
	object_file(info->dlpi_name, file);
	int rc = elf_read_section(file, info->dlpi_phdr, info->dlpi_phnum,
				  SEC_NAME, &o.sec, &why);
	if (rc < 0 && why && strcmp(why, "cannot open the file") != 0)
		preload_say("%s: not bound: %s", file, why);
	if (rc <= 0 || o.sec.size == 0) {
		elf_sec_free(&o.sec);
		return 0;
	}
	/* The binding is keyed by the real path; resolved only for objects
	 * with a section (a dozen readlinks per object otherwise). */
	if (!realpath(file, o.path))
		snprintf(o.path, sizeof(o.path), "%s", file);
	o.start = info->dlpi_addr + o.sec.vaddr;
	struct object *objs = realloc(sc->objs, (sc->n + 1) * sizeof(o));
	uintptr_t *bases = realloc(sc->bases, (sc->n + 1) * sizeof(uintptr_t));
	if (objs)
		sc->objs = objs;
	if (bases)
		sc->bases = bases;
	if (!objs || !bases) {
		elf_sec_free(&o.sec);
		return 1;
	}
	sc->objs[sc->n] = o;
	sc->bases[sc->n++] = info->dlpi_addr;
	return 0;
}

/* Without symbols the section is one anonymous variable. */
static void whole_section_var(struct object *o)
{
	if (o->sec.nvars)
		return;
	o->sec.vars = malloc(sizeof(*o->sec.vars));
	if (!o->sec.vars)
		return;
	o->sec.vars[0] = (struct elf_var){strdup("(section)"), 0, o->sec.size};
	o->sec.nvars = o->sec.vars[0].name ? 1 : 0;
}

static void scan(struct scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	dl_iterate_phdr(scan_one, sc);
}

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		elf_sec_free(&sc->objs[i].sec);
	free(sc->objs);
	free(sc->bases);
}

void sections_bind_all(void)
{
	struct scan sc;
	t_inside++;
	pthread_mutex_lock(&g_sec_mu);
	scan(&sc);
	if (sc.n && preload_pool(1) == 0)
		for (size_t i = 0; i < sc.n; i++) {
			whole_section_var(&sc.objs[i]);
			bind(&sc.objs[i], sc.bases[i]);
		}
	scan_free(&sc);
	pthread_mutex_unlock(&g_sec_mu);
	t_inside--;
}

static int still_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	return info->dlpi_addr == *(uintptr_t *)arg;
}

void sections_forget_gone(void)
{
	t_inside++;
	pthread_mutex_lock(&g_sec_mu);
	for (int i = 0; i < MAX_BOUND; i++) {
		uintptr_t base = g_bound[i].base;
		if (g_bound[i].at && !dl_iterate_phdr(still_loaded, &base)) {
			mnemo_region_unalias(g_pool, (void *)g_bound[i].at);
			g_bound[i].at = 0;
		}
	}
	for (size_t i = 0; i < g_nseen;) {
		if (dl_iterate_phdr(still_loaded, &g_seen[i]))
			i++;
		else
			g_seen[i] = g_seen[--g_nseen];
	}
	pthread_mutex_unlock(&g_sec_mu);
	t_inside--;
}
