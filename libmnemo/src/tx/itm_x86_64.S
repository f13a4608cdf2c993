/*
 * itm_x86_64.S -- the two pieces of the GCC TM ABI that need assembly:
 * _ITM_beginTransaction returns once per attempt of the transaction, like
 * setjmp, and mnemo_itm_longjmp goes back to it.
 *
 * Layout of struct itm_jmpbuf (stm.h): cfa, rbx, rbp, r12, r13, r14, r15,
 * rip.  cfa is the caller's stack pointer after the return; rip the return
 * address.  Both are saved because the caller's body reuses the stack slot
 * of the return address.
 */
	.text
	.globl	_ITM_beginTransaction
	.type	_ITM_beginTransaction, @function
_ITM_beginTransaction:
	.cfi_startproc
	leaq	8(%rsp), %rax
	movq	(%rsp), %rdx
	subq	$72, %rsp
	.cfi_adjust_cfa_offset 72
	movq	%rax, 0(%rsp)
	movq	%rbx, 8(%rsp)
	movq	%rbp, 16(%rsp)
	movq	%r12, 24(%rsp)
	movq	%r13, 32(%rsp)
	movq	%r14, 40(%rsp)
	movq	%r15, 48(%rsp)
	movq	%rdx, 56(%rsp)
	movq	%rsp, %rsi
	call	mnemo_itm_begin
	addq	$72, %rsp
	.cfi_adjust_cfa_offset -72
	ret
	.cfi_endproc
	.size	_ITM_beginTransaction, .-_ITM_beginTransaction

/* void mnemo_itm_longjmp(const itm_jmpbuf *jb, uint32_t actions) */
	.globl	mnemo_itm_longjmp
	.hidden	mnemo_itm_longjmp
	.type	mnemo_itm_longjmp, @function
mnemo_itm_longjmp:
	.cfi_startproc
	movl	%esi, %eax
	movq	8(%rdi), %rbx
	movq	16(%rdi), %rbp
	movq	24(%rdi), %r12
	movq	32(%rdi), %r13
	movq	40(%rdi), %r14
	movq	48(%rdi), %r15
	movq	56(%rdi), %rdx
	movq	0(%rdi), %rsp
	jmp	*%rdx
	.cfi_endproc
	.size	mnemo_itm_longjmp, .-mnemo_itm_longjmp

	.section .note.GNU-stack,"",@progbits
