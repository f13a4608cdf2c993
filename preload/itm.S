/*
 * itm.S -- the GCC TM ABI, exported by the interposer and forwarded to
 * libmnemo's implementation.
 *
 * Why: a -fgnu-tm program links libitm, and the dynamic linker looks in the
 * program, then the preloaded objects, then the program's libraries (libitm)
 * and only then in the preload's own dependencies (libmnemo).  So the
 * preload itself must define every _ITM_* symbol (unversioned, which
 * matches the program's LIBITM_1.0 references).
 *
 * Each trampoline is a bare `jmp` through a slot: no frame of its own, so
 * _ITM_beginTransaction still sees its caller's stack and registers (it
 * saves them, setjmp-like).  Slots are filled by itm_resolve() (init.c)
 * from libmnemo with dlvsym(); a call that comes before that (a library's
 * constructor) takes the slow path, which saves every argument register,
 * resolves, restores them and jumps.
 */
	.text

/* r11 = the slot; preserves rdi..r9, rax (varargs count), xmm0..xmm7 and
 * the stack pointer, which every TM ABI entry may use for arguments. */
	.p2align 4
	.type itm_slow, @function
itm_slow:
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %r8
	pushq %r9
	pushq %rax
	pushq %r11
	subq $136, %rsp		/* 8 x 16 bytes of xmm + 8: 16-byte aligned */
	movdqu %xmm0, 0(%rsp)
	movdqu %xmm1, 16(%rsp)
	movdqu %xmm2, 32(%rsp)
	movdqu %xmm3, 48(%rsp)
	movdqu %xmm4, 64(%rsp)
	movdqu %xmm5, 80(%rsp)
	movdqu %xmm6, 96(%rsp)
	movdqu %xmm7, 112(%rsp)
	call mnemo_preload_itm_resolve
	movdqu 0(%rsp), %xmm0
	movdqu 16(%rsp), %xmm1
	movdqu 32(%rsp), %xmm2
	movdqu 48(%rsp), %xmm3
	movdqu 64(%rsp), %xmm4
	movdqu 80(%rsp), %xmm5
	movdqu 96(%rsp), %xmm6
	movdqu 112(%rsp), %xmm7
	addq $136, %rsp
	popq %r11
	popq %rax
	popq %r9
	popq %r8
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	jmp *(%r11)
	.size itm_slow, .-itm_slow

/* Slots: one quadword per symbol, in itm_syms.h order (init.c names
 * them in the same order). */
	.section .bss.mnemo_itm, "aw", @nobits
	.p2align 3
	.globl mnemo_preload_itm_slots
	.hidden mnemo_preload_itm_slots
mnemo_preload_itm_slots:
	.text
	.hidden mnemo_preload_itm_resolve

#define ITM(name, ver)					\
	.pushsection .bss.mnemo_itm, "aw", @nobits;	\
2:	.quad 0;					\
	.popsection;					\
	.globl name;					\
	.type name, @function;				\
	.p2align 4;					\
name:							\
	movq 2b(%rip), %r11;				\
	testq %r11, %r11;				\
	jz 1f;						\
	jmp *%r11;					\
1:	leaq 2b(%rip), %r11;				\
	jmp itm_slow;					\
	.size name, .-name;
#include "itm_syms.h"
#undef ITM

	.section .note.GNU-stack, "", @progbits
