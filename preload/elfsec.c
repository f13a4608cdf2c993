/*
 * elfsec.c -- read a section's place and its variables from an ELF file.
 *
 * Section headers and symbol tables are not loaded into memory, so they
 * are read from the object's file with pread.  Every offset and count read
 * from the file is checked against the file's size before it is used: the
 * file is input, and a truncated or hostile one must give an error, not a
 * crash.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsec.h"

struct file {
	int fd;
	uint64_t size;
	ElfW(Ehdr) eh;
	ElfW(Shdr) *sh; /* e_shnum entries */
};

/* Read n bytes at off into a new buffer (NUL-terminated), or NULL. */
static void *read_at(const struct file *f, uint64_t off, uint64_t n)
{
	if (off > f->size || n > f->size - off || n > ((uint64_t)1 << 31))
		return NULL;
	char *b = malloc(n + 1);
	if (b && pread(f->fd, b, n, (off_t)off) != (ssize_t)n) {
		free(b);
		return NULL;
	}
	if (b)
		b[n] = '\0';
	return b;
}

static int open_elf(struct file *f, const char *path, const char **why)
{
	struct stat st;
	f->sh = NULL;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st) != 0) {
		*why = "cannot open the file";
		return -1;
	}
	f->size = (uint64_t)st.st_size;
	if (pread(f->fd, &f->eh, sizeof(f->eh), 0) != sizeof(f->eh) ||
	    memcmp(f->eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    f->eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    f->eh.e_shentsize != sizeof(ElfW(Shdr)) ||
	    f->eh.e_shstrndx >= f->eh.e_shnum) {
		*why = "not a 64-bit ELF file with section headers";
		return -1;
	}
	f->sh = read_at(f, f->eh.e_shoff,
			(uint64_t)f->eh.e_shnum * sizeof(ElfW(Shdr)));
	if (!f->sh) {
		*why = "truncated section headers";
		return -1;
	}
	return 0;
}

static void close_elf(struct file *f)
{
	free(f->sh);
	if (f->fd >= 0)
		close(f->fd);
}

/* The loaded image came from this file: same loadable segments. */
static int same_image(const struct file *f, const ElfW(Phdr) *mem,
		      size_t n)
{
	if (f->eh.e_phnum != n || f->eh.e_phentsize != sizeof(ElfW(Phdr)))
		return 0;
	ElfW(Phdr) *ph = read_at(f, f->eh.e_phoff, n * sizeof(ElfW(Phdr)));
	int same = ph != NULL;
	for (size_t i = 0; same && i < n; i++)
		same = ph[i].p_type == mem[i].p_type &&
		       ph[i].p_vaddr == mem[i].p_vaddr &&
		       ph[i].p_memsz == mem[i].p_memsz;
	free(ph);
	return same;
}

static long find_section(const struct file *f, const char *name)
{
	const ElfW(Shdr) *ss = &f->sh[f->eh.e_shstrndx];
	char *names = read_at(f, ss->sh_offset, ss->sh_size);
	long found = -1;
	for (long i = 0; names && i < f->eh.e_shnum && found < 0; i++)
		if (f->sh[i].sh_name < ss->sh_size &&
		    strcmp(names + f->sh[i].sh_name, name) == 0)
			found = i;
	free(names);
	return found;
}

/* The section must be allocated, writable data lying inside one writable
 * loadable segment of the image in memory: the interposer maps pool
 * pages over it, so a file that says otherwise is refused. */
static int section_fits(const ElfW(Shdr) *sh, const ElfW(Phdr) *mem,
			size_t n)
{
	if ((sh->sh_flags & (SHF_ALLOC | SHF_WRITE)) !=
	    (SHF_ALLOC | SHF_WRITE))
		return 0;
	for (size_t i = 0; i < n; i++) {
		const ElfW(Phdr) *p = &mem[i];
		if (p->p_type == PT_LOAD && (p->p_flags & PF_W) &&
		    sh->sh_addr >= p->p_vaddr && sh->sh_size <= p->p_memsz &&
		    sh->sh_addr - p->p_vaddr <= p->p_memsz - sh->sh_size)
			return 1;
	}
	return 0;
}

static long find_type(const struct file *f, uint32_t type)
{
	for (long i = 0; i < f->eh.e_shnum; i++)
		if (f->sh[i].sh_type == type)
			return i;
	return -1;
}

static int add_var(struct elf_sec *s, const char *file, const char *name,
		   uint64_t off, uint64_t size)
{
	size_t n = strlen(name) + (file ? strlen(file) + 1 : 0) + 1;
	struct elf_var *v = realloc(s->vars, (s->nvars + 1) * sizeof(*v));
	if (!v)
		return -1;
	s->vars = v;
	v = &s->vars[s->nvars];
	v->name = malloc(n);
	if (!v->name)
		return -1;
	if (file)
		strcat(strcat(strcpy(v->name, file), ":"), name);
	else
		strcpy(v->name, name);
	v->off = off;
	v->size = size;
	s->nvars++;
	return 0;
}

/* Collect the sized symbols of section `idx` from symbol table `tab`. */
static int read_vars(const struct file *f, long tab, long idx,
		     struct elf_sec *s)
{
	const ElfW(Shdr) *t = &f->sh[tab];
	if (t->sh_link >= f->eh.e_shnum || t->sh_entsize != sizeof(ElfW(Sym)))
		return -1;
	const ElfW(Shdr) *st = &f->sh[t->sh_link];
	ElfW(Sym) *sym = read_at(f, t->sh_offset, t->sh_size);
	char *str = read_at(f, st->sh_offset, st->sh_size);
	const char *srcfile = NULL;
	int rc = sym && str ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < t->sh_size / sizeof(*sym); i++) {
		const ElfW(Sym) *y = &sym[i];
		if (y->st_name >= st->sh_size)
			continue;
		const char *nm = str + y->st_name;
		if (ELF64_ST_TYPE(y->st_info) == STT_FILE)
			srcfile = nm;
		if (y->st_shndx != idx || y->st_size == 0 ||
		    y->st_value < s->vaddr || y->st_size > s->size ||
		    y->st_value - s->vaddr > s->size - y->st_size)
			continue;
		int local = ELF64_ST_BIND(y->st_info) == STB_LOCAL;
		rc = add_var(s, local ? srcfile : NULL, nm,
			     y->st_value - s->vaddr, y->st_size);
	}
	free(sym);
	free(str);
	return rc;
}

int elf_read_section(const char *path, const ElfW(Phdr) *phdr, size_t phnum,
		     const char *name, struct elf_sec *out, const char **why)
{
	struct file f;
	memset(out, 0, sizeof(*out));
	int rc = open_elf(&f, path, why);
	long idx = rc ? -1 : find_section(&f, name);
	if (rc == 0 && idx >= 0 && !same_image(&f, phdr, phnum)) {
		*why = "the file changed since it was loaded";
		rc = -1;
	}
	if (rc == 0 && idx >= 0 && !section_fits(&f.sh[idx], phdr, phnum)) {
		*why = "its mnemo_persistent section is not writable data "
		       "inside a writable segment";
		rc = -1;
	}
	if (rc == 0 && idx >= 0) {
		out->vaddr = f.sh[idx].sh_addr;
		out->size = f.sh[idx].sh_size;
		long tab = find_type(&f, SHT_SYMTAB);
		out->symtab = tab >= 0 ? 1 : 2;
		if (tab < 0)
			tab = find_type(&f, SHT_DYNSYM);
		if (tab < 0)
			out->symtab = 0;
		else if (read_vars(&f, tab, idx, out) != 0) {
			*why = "unreadable symbol table";
			rc = -1;
		}
	}
	close_elf(&f);
	if (rc)
		elf_sec_free(out);
	return rc ? -1 : idx >= 0;
}

void elf_sec_free(struct elf_sec *s)
{
	for (size_t i = 0; i < s->nvars; i++)
		free(s->vars[i].name);
	free(s->vars);
	memset(s, 0, sizeof(*s));
}
