; Calls: a recursive factorial through the stack and LR, and a string printed with OUT.
; Prints "6! = 720" and halts with P1 = 720.

        .text
_start:
        MOVI    P1, 6
        CALL    fact            ; P1 = 6! = 720
        MOV     P20, P1
        MOVI    P2, msg
        CALL    puts            ; "6! = "
        OUT     P20, 1          ; "720\n"
        MOV     P1, P20
        HALT

; fact(P1) -> P1. Non-leaf: saves LR and the callee-saved P20 on the stack.
fact:
        PUSH    LR
        PUSH    P20
        MOV     P20, P1         ; n
        MOVI    P1, 1
        BLE     P20, P1, fact_ret   ; n <= 1: result 1
        ADDI    P1, P20, -1
        CALL    fact            ; P1 = (n-1)!
        MUL     P1, P1, P20
fact_ret:
        POP     P20
        POP     LR
        RET

; puts(P2 = address of a 0-terminated string). Leaf: LR stays in place. Clobbers P2, P3.
puts:
        LOAD    P3, [P2]
        BEQ     P3, puts_end
        OUT     P3, 0
        ADDI    P2, P2, 1
        JUMP    puts
puts_end:
        RET

        .data
msg:    .string "6! = "
