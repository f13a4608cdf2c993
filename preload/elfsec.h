/*
 * elfsec.h -- what the interposer reads from an object's file: where its
 * `mnemo_persistent` section is and which variables it holds.
 */
#ifndef MNEMO_PRELOAD_ELFSEC_H
#define MNEMO_PRELOAD_ELFSEC_H

#include <link.h>
#include <stddef.h>
#include <stdint.h>

/* A variable of the section.  Local (static) variables are named
 * "FILE:NAME" after the source file symbol that precedes them. */
struct elf_var {
	char *name;
	uint64_t off, size; /* from the start of the section */
};

struct elf_sec {
	uint64_t vaddr, size; /* link-time address and size */
	struct elf_var *vars;
	size_t nvars;
	int symtab; /* 1: .symtab, 2: .dynsym only, 0: no symbols */
};

/*
 * Read section `name` of the ELF file at `path`, whose loaded image has
 * the program headers phdr[0..phnum) (checked against the file, so that a
 * file replaced since it was loaded is refused).  Returns 1 and fills
 * *out, 0 if the file has no such section, or -1 with *why set.
 */
int elf_read_section(const char *path, const ElfW(Phdr) *phdr, size_t phnum,
		     const char *name, struct elf_sec *out, const char **why);
void elf_sec_free(struct elf_sec *s);

#endif
