; A dense layer y = relu(requant(W x + b)) with pentary weights, then argmax over y.
; 20 inputs, 3 outputs: each weight row takes ceil(20/16) = 2 packed words (lanes 20..31 are 0,
; so DOT never reads x[20..31] and never spends a cycle on them).
; The harness (tests/pentary) writes `x`, reads `y` and `best`; OUT prints the argmax.

N_IN    = 20
N_OUT   = 3
ROW     = (N_IN + 15) / 16          ; packed words per weight row

        .text
_start:
        MOVI    P1, w               ; weight pointer: DOT walks it through every row
        MOVI    P2, b               ; bias pointer
        MOVI    P3, y               ; output pointer
        MOVI    P4, N_OUT           ; rows left
        LOAD    P6, [qd]            ; requant descriptor (k, rounding, lo, hi)
        MOVI    P7, 3               ; requant multiplier m
row:
        LOAD    P10, [P2]           ; acc = b[j]
        MOVI    P11, x              ; activation pointer, reset for each row
        DOT     P10, P1, P11        ; acc += w[j, 0..15] . x[0..15]
        DOT     P10, P1, P11        ; acc += w[j, 16..31] . x[16..31]
        QUANT   P10, P10, P7, P6    ; clamp((acc*3 + 4) >> 3, -128, 127)
        RELU    P10, P10
        STORE   P10, [P3]
        ADDI    P2, P2, 1
        ADDI    P3, P3, 1
        ADDI    P4, P4, -1
        BGT     P4, row

; argmax: first index of the largest y[j]
        MOVI    P12, 0              ; best index
        LOAD    P13, [y]            ; best value
        MOVI    P14, 1              ; j
argmax:
        MOVI    P15, N_OUT
        BGE     P14, P15, found
        LOAD    P16, [P14 + y]
        BLE     P16, P13, next      ; ties keep the first
        MOV     P12, P14
        MOV     P13, P16
next:
        ADDI    P14, P14, 1
        JUMP    argmax
found:
        STORE   P12, [best]
        OUT     P12, 1
        HALT

        .data
x:      .word   12, -7, 33, 0, 5, 0, -90, 41, 8, 8, 0, -3, 127, -128, 60, 2
        .word   -15, 0, 9, 100
w:      ; row 0
        .pent   1, 0, -1, 2, 0, 0, 1, -2, 0, 1, 1, 0, 0, -1, 2, 0
        .pent   0, 1, 0, -2
        ; row 1
        .pent   -2, 1, 0, 0, 2, -1, 0, 0, 1, 0, -1, 1, 2, 0, 0, 1
        .pent   1, 0, 2, 1
        ; row 2
        .pent   0, 0, 2, 1, -1, 0, 0, 1, 0, 0, 0, 0, 1, 1, -1, 0
        .pent   2, 2, 0, 0
b:      .word   5, -40, 17
qd:     .qdesc  3, 1, -128, 127

        .bss
y:      .space  N_OUT
best:   .space  1
