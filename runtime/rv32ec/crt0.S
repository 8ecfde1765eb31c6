/* crt0.S - lbc start-up code for RV32EC (CH32V003 memory map), section .init at the reset address.
 *
 * Sets gp and sp, copies .data from flash, zeroes .bss (not .noinit: the harness writes the input
 * into the activation arena before the first instruction), calls main, then stops at _exit:
 *   default     ebreak at _exit (emulator harnesses run until the address of _exit)
 *   -DLBC_BOARD  _exit spins in place (a board without a debugger attached just idles there)
 *   -DQEMU_USER  exit syscall for qemu-riscv32 user mode; RVE ELFs take the syscall number in t0.
 *               qemu maps .data at its run address already, so the copy is skipped. Also defines
 *               lbc_sys_read / lbc_sys_write (fd, buf, n) for the stdin/stdout test driver.
 * The board build (main.c with -DLBC_BOARD) brings up the clocks itself; a firmware of your own may use
 * its SDK's start-up code instead and link only model.c, lbc_kernels.S and lbc_rt.c.
 */
    .section .init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
#ifndef QEMU_USER
    la      a0, __data_load
    la      a1, __data_start
    la      a2, __data_end
1:  bgeu    a1, a2, 2f
    lw      a3, 0(a0)
    sw      a3, 0(a1)
    addi    a0, a0, 4
    addi    a1, a1, 4
    j       1b
2:
#endif
    la      a1, __bss_start
    la      a2, __bss_end
3:  bgeu    a1, a2, 4f
    sw      zero, 0(a1)
    addi    a1, a1, 4
    j       3b
4:  call    main
    .globl _exit
_exit:
#if defined(QEMU_USER)
    li      t0, 93
    ecall
#elif !defined(LBC_BOARD)
    ebreak
#endif
5:  j       5b

#ifdef QEMU_USER
    .globl lbc_sys_read
lbc_sys_read:
    li      t0, 63
    ecall
    ret
    .globl lbc_sys_write
lbc_sys_write:
    li      t0, 64
    ecall
    ret
#endif
