/*
 * plt.c -- with MNEMO_MALLOC=off, calls skip the interposer.
 *
 * Routing off, our malloc only forwards to glibc, yet every call still
 * pays a second indirect jump (about a tenth of a malloc+free pair).  So
 * at start-up each loaded object's PLT slot (R_X86_64_JUMP_SLOT) that
 * would reach one of our wrappers is pointed at glibc's function instead:
 *  - malloc, calloc: always (routing never turns on after start-up);
 *  - free, realloc: only while no pool is open, since with a pool their
 *    owner check is needed.  Until the pool opens no pointer into it
 *    exists, and plt_unbind_owners() points those slots back at our
 *    wrappers before it opens (a dlopen'd object with a persistent
 *    section), finding them again by name and value: an object bound at
 *    start-up may have been unloaded since.
 * Only PLT slots change, never GLOB_DAT ones, so `&malloc` compares equal
 * everywhere.  A slot that resolves elsewhere (a program or another
 * preloaded library that defines malloc) is left alone; objects loaded
 * later keep calling through the wrappers.  MNEMO_PRELOAD_DIRECT=0 turns
 * this off.  x86-64 only; elsewhere every call goes through the wrappers.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload.h"

#if defined(__x86_64__)

struct target {
	const char *name;
	void *glibc;  /* where the slot goes */
	void *ours;   /* our wrapper */
	int owner;    /* needs the owner check once a pool is open */
	int global;   /* the global lookup of name finds our wrapper */
};

static struct target g_tg[] = {
	{"malloc", (void *)__libc_malloc, (void *)preload_malloc, 0, 0},
	{"calloc", (void *)__libc_calloc, (void *)preload_calloc, 0, 0},
	{"free", (void *)__libc_free, (void *)preload_free, 1, 0},
	{"realloc", (void *)__libc_realloc, (void *)preload_realloc, 1, 0},
};
#define NTARGET (sizeof(g_tg) / sizeof(g_tg[0]))

static int g_bound_owners; /* free/realloc slots may point at glibc */
static uintptr_t g_self_lo, g_self_hi; /* this library's span */

/* One loaded object, as dl_iterate_phdr describes it. */
struct obj {
	uintptr_t bias, lo, hi;   /* load bias; the span of its PT_LOADs */
	uintptr_t ro_lo, ro_hi;   /* PT_GNU_RELRO, whole pages, or 0,0 */
	const ElfW(Rela) *rel;    /* DT_JMPREL */
	size_t nrel;
	const ElfW(Sym) *sym;
	const char *str;
	int ro_open;              /* ro pages made writable for now */
};

/* glibc adjusts an object's dynamic entries in place; the vDSO's are not
 * (and it has no PLT), so unadjusted ones get the bias added. */
static uintptr_t dyn_ptr(const struct obj *o, uintptr_t v)
{
	return v < o->bias ? v + o->bias : v;
}

/* The object's span and RELRO pages from its program headers. */
static const ElfW(Dyn) *read_phdrs(const struct dl_phdr_info *info,
				   struct obj *o)
{
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	memset(o, 0, sizeof(*o));
	o->bias = info->dlpi_addr;
	o->lo = UINTPTR_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = o->bias + ph->p_vaddr;
		if (ph->p_type == PT_LOAD) {
			o->lo = a < o->lo ? a : o->lo;
			o->hi = a + ph->p_memsz > o->hi ? a + ph->p_memsz : o->hi;
		} else if (ph->p_type == PT_DYNAMIC) {
			dyn = (const ElfW(Dyn) *)a;
		} else if (ph->p_type == PT_GNU_RELRO) {
			/* what ld.so made read-only: whole pages only */
			o->ro_lo = a & ~(pg - 1);
			o->ro_hi = (a + ph->p_memsz) & ~(pg - 1);
		}
	}
	return dyn;
}

/* 1 if the object has PLT relocations (RELA) we can read. */
static int read_obj(const struct dl_phdr_info *info, struct obj *o)
{
	int rela = 0;
	size_t relsz = 0;
	for (const ElfW(Dyn) *d = read_phdrs(info, o); d && d->d_tag != DT_NULL;
	     d++) {
		uintptr_t v = d->d_un.d_ptr;
		switch (d->d_tag) {
		case DT_JMPREL: o->rel = (const ElfW(Rela) *)dyn_ptr(o, v); break;
		case DT_PLTRELSZ: relsz = d->d_un.d_val; break;
		case DT_PLTREL: rela = d->d_un.d_val == DT_RELA; break;
		case DT_SYMTAB: o->sym = (const ElfW(Sym) *)dyn_ptr(o, v); break;
		case DT_STRTAB: o->str = (const char *)dyn_ptr(o, v); break;
		}
	}
	o->nrel = relsz / sizeof(ElfW(Rela));
	return rela && o->rel && o->sym && o->str && o->lo < o->hi;
}

/* Whether a slot's calls reach our wrapper: it points into this library,
 * or (bound lazily, still pointing into its own object's PLT) the global
 * lookup would bind it to us. */
static int reaches_us(const struct obj *o, void *const *slot,
		      const struct target *t)
{
	uintptr_t v = (uintptr_t)*slot;
	if (v >= o->lo && v < o->hi)
		return t->global;
	return v >= g_self_lo && v < g_self_hi;
}

/* Store v in the slot, making its page writable first if ld.so made it
 * read-only; 0, or -1 if mprotect refused. */
static int set_slot(struct obj *o, void **slot, void *v)
{
	uintptr_t a = (uintptr_t)slot;
	int ro = a >= o->ro_lo && a < o->ro_hi;
	if (ro && !o->ro_open) {
		if (mprotect((void *)o->ro_lo, o->ro_hi - o->ro_lo,
			     PROT_READ | PROT_WRITE) != 0)
			return -1;
		o->ro_open = 1;
	}
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
	return 0;
}

static void close_obj(struct obj *o)
{
	if (o->ro_open)
		mprotect((void *)o->ro_lo, o->ro_hi - o->ro_lo, PROT_READ);
	o->ro_open = 0;
}

static const struct target *target_of(const char *name)
{
	for (size_t i = 0; i < NTARGET; i++)
		if (strcmp(name, g_tg[i].name) == 0)
			return &g_tg[i];
	return NULL;
}

/* A walk over every loaded object's PLT slots for our targets.
 * Binding: slots that reach our wrappers go to glibc (free and realloc
 * only if owners).  Restoring: free and realloc slots that point at glibc
 * go back to our wrappers (whoever bound them: the wrapper is right for
 * any pointer). */
struct walk {
	int restore, owners;
	unsigned slots, objects, failed;
};

static void walk_slot(struct walk *w, struct obj *o, void **slot,
		      const struct target *t)
{
	void *v;
	if (w->restore) {
		if (!t->owner || *slot != t->glibc)
			return;
		v = t->ours;
	} else {
		if ((t->owner && !w->owners) || !reaches_us(o, slot, t))
			return;
		v = t->glibc;
	}
	if (set_slot(o, slot, v) == 0)
		w->slots++;
	else
		w->failed++;
}

static int walk_obj(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct walk *w = arg;
	struct obj o;
	unsigned before = w->slots;
	(void)size;
	if (!read_obj(info, &o) || (o.lo >= g_self_lo && o.lo < g_self_hi))
		return 0;
	for (size_t i = 0; i < o.nrel; i++) {
		const ElfW(Rela) *r = &o.rel[i];
		if (ELF64_R_TYPE(r->r_info) != R_X86_64_JUMP_SLOT)
			continue;
		const struct target *t =
			target_of(o.str + o.sym[ELF64_R_SYM(r->r_info)].st_name);
		uintptr_t slot = o.bias + r->r_offset;
		if (t && slot >= o.lo && slot + sizeof(void *) <= o.hi)
			walk_slot(w, &o, (void **)slot, t);
	}
	close_obj(&o);
	w->objects += w->slots != before;
	return 0;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct obj o;
	uintptr_t me = (uintptr_t)(void *)find_self;
	(void)size;
	(void)arg;
	read_phdrs(info, &o);
	if (me < o.lo || me >= o.hi)
		return 0;
	g_self_lo = o.lo;
	g_self_hi = o.hi;
	return 1;
}

void plt_bind(void)
{
	const char *e = getenv("MNEMO_PRELOAD_DIRECT");
	if (e && strcmp(e, "0") == 0)
		return;
	dl_iterate_phdr(find_self, NULL);
	if (g_self_lo == g_self_hi)
		return;
	for (size_t i = 0; i < NTARGET; i++)
		g_tg[i].global = dlsym(RTLD_DEFAULT, g_tg[i].name) == g_tg[i].ours;
	struct walk w = {0, g_pool == NULL, 0, 0, 0};
	__atomic_store_n(&g_bound_owners, w.owners, __ATOMIC_RELEASE);
	dl_iterate_phdr(walk_obj, &w);
	if (g_verbose)
		preload_say("MNEMO_MALLOC=off: %u call slots in %u objects go "
			    "straight to glibc%s", w.slots, w.objects,
			    w.owners ? "" : " (malloc and calloc only: a "
					    "pool is open)");
}

int plt_unbind_owners(void)
{
	if (!__atomic_exchange_n(&g_bound_owners, 0, __ATOMIC_ACQ_REL))
		return 0;
	struct walk w = {1, 1, 0, 0, 0};
	dl_iterate_phdr(walk_obj, &w);
	return w.failed ? -1 : 0;
}

#else

void plt_bind(void)
{
}

int plt_unbind_owners(void)
{
	return 0;
}

#endif
