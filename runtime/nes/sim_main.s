; sim65 harness of the lbc NES target (ca65). Links with model.o and cc65's sim6502.lib.
;
; stdin: one mode byte, then samples of LBC_INPUT_SIZE raw int8 bytes. For each complete sample the
; program calls the routine and writes LBC_OUTPUT_BYTES bytes (lbc_output) to stdout. Mode 0 calls
; lbc_run; mode 1 calls an empty routine through the same path, so the difference of the two
; `sim65 -c` totals is the cost of lbc_run (both paths take the same cycles otherwise).

.include "model.inc"
.import pushax, _read, _write
.export _main

.segment "BSS"
mode: .res 1
vec:  .res 2

.segment "RODATA"
.align 2
vec_lo: .byte <lbc_run, <dry
vec_hi: .byte >lbc_run, >dry

.segment "CODE"
_main:
    lda #0
    ldx #0
    jsr pushax
    lda #<mode
    ldx #>mode
    jsr pushax
    lda #1
    ldx #0
    jsr _read
    cmp #1
    bne done
    ldy mode
    cpy #2
    bcs done
    lda vec_lo,y
    sta vec
    lda vec_hi,y
    sta vec+1
loop:
    lda #0
    ldx #0
    jsr pushax
    lda #<lbc_input
    ldx #>lbc_input
    jsr pushax
    lda #<LBC_INPUT_SIZE
    ldx #>LBC_INPUT_SIZE
    jsr _read
    cmp #<LBC_INPUT_SIZE
    bne done
    cpx #>LBC_INPUT_SIZE
    bne done
    jsr call
    lda #1
    ldx #0
    jsr pushax
    lda #<lbc_output
    ldx #>lbc_output
    jsr pushax
    lda #<LBC_OUTPUT_BYTES
    ldx #>LBC_OUTPUT_BYTES
    jsr _write
    jmp loop
done:
    lda #0
    tax
    rts

call:
    jmp (vec)
dry:
    rts
