; lbc NES demo shell (ca65). Links with model.o (the network), samples.o and chr.o (both generated).
;
; Shows one input sample as a picture (one grey tile per value, 2x2 tiles for small images), runs
; lbc_run on it, then shows the predicted class, the label (if known), the cycles lbc_run took (measured
; by lbc under sim65 on the same code at build time and stored in sh_cycles) and the output values.
; Right / A: next sample, Left / B: previous one.
;
; For tests without a screen: after each inference sh_status = $A5, sh_sample = the sample shown,
; sh_class = the predicted class, and lbc_output holds the raw outputs. Writing n+1 to sh_req (RAM)
; makes the shell show sample n.

.include "model.inc"

.import sh_nsamples, sh_in_lo, sh_in_hi, sh_levels, sh_labels, sh_cycles
.import sh_imgw, sh_nrows, sh_scale, sh_rows_lo, sh_rows_hi, sh_rows_off, sh_title, sh_quant

PPUCTRL   = $2000
PPUMASK   = $2001
PPUSTATUS = $2002
PPUSCROLL = $2005
PPUADDR   = $2006
PPUDATA   = $2007
JOY1      = $4016
BTN_RIGHT = $01
BTN_LEFT  = $02
BTN_B     = $40
BTN_A     = $80
TEXT_COL  = 20
STATUS_DONE = $A5

.segment "HEADER"
    .byte "NES", $1A
    .byte 2                 ; 2 x 16 KB PRG-ROM (NROM-256)
    .byte 1                 ; 1 x 8 KB CHR-ROM
    .byte $01, $00          ; mapper 0, vertical mirroring
    .byte 0, 0, 0, 0, 0, 0, 0, 0

.segment "ZEROPAGE"
sh_ptr:   .res 2
sh_frame: .res 1
sh_pad:   .res 1
sh_prev:  .res 1
sh_tmp:   .res 1
sh_cnt:   .res 1
sh_idx:   .res 1

.segment "SHBSS"
sh_status: .res 1
sh_sample: .res 1
sh_class:  .res 1
sh_req:    .res 1
sh_runs:   .res 1
sh_dig:    .res 4
sh_best:   .res 1

.export sh_status, sh_sample, sh_class, sh_req, sh_runs

; set the PPU address to nametable 0, row r, column c
.macro at row, col
    lda #>($2000 + (row) * 32 + (col))
    sta PPUADDR
    lda #<($2000 + (row) * 32 + (col))
    sta PPUADDR
.endmacro

.macro print row, col, str
    at row, col
    lda #<str
    ldy #>str
    jsr puts
.endmacro

.segment "CODE"

reset:
    sei
    cld
    ldx #$40
    stx $4017               ; no APU frame IRQ
    ldx #$FF
    txs
    inx
    stx PPUCTRL
    stx PPUMASK
    stx $4010
    bit PPUSTATUS
@vb1:
    bit PPUSTATUS
    bpl @vb1
    txa
@clear:
    sta $0000,x
    sta $0100,x
    sta $0200,x
    sta $0300,x
    sta $0400,x
    sta $0500,x
    sta $0600,x
    sta $0700,x
    inx
    bne @clear
@vb2:
    bit PPUSTATUS
    bpl @vb2
    jsr load_palette
    jsr clear_screen
    jsr draw_static
    lda #0
    sta sh_sample
    jsr show

main:
    jsr wait_frame
    jsr read_pad
    lda sh_req              ; test mailbox
    beq @pad
    ldx #0
    stx sh_req
    sec
    sbc #1
    cmp sh_nsamples
    bcs @pad
    sta sh_sample
    jsr show
    jmp main
@pad:
    lda sh_pad
    eor sh_prev
    and sh_pad              ; buttons newly pressed
    sta sh_tmp
    lda sh_pad
    sta sh_prev
    lda sh_tmp
    and #(BTN_RIGHT | BTN_A)
    beq @left
    ldx sh_sample
    inx
    cpx sh_nsamples
    bcc @set
    ldx #0
    beq @set
@left:
    lda sh_tmp
    and #(BTN_LEFT | BTN_B)
    beq main
    ldx sh_sample
    bne @dec
    ldx sh_nsamples
@dec:
    dex
@set:
    stx sh_sample
    jsr show
    jmp main

nmi:
    inc sh_frame
irq:
    rti

wait_frame:
    lda sh_frame
@w:
    cmp sh_frame
    beq @w
    rts

read_pad:
    lda #1
    sta JOY1
    lda #0
    sta JOY1
    ldx #8
@bit:
    lda JOY1
    lsr a
    rol sh_pad
    dex
    bne @bit
    rts

; ---- run the network on sample sh_sample and redraw the screen
show:
    lda #0
    sta sh_status
    sta PPUCTRL             ; no NMI while drawing
    sta PPUMASK             ; rendering off: the nametable may be written
    ldx sh_sample
    lda sh_in_lo,x
    sta sh_ptr
    lda sh_in_hi,x
    sta sh_ptr+1
    ldy #<(LBC_INPUT_SIZE - 1)
@copy:
    lda (sh_ptr),y
    sta lbc_input,y
    dey
    cpy #$FF
    bne @copy
    jsr lbc_run
    inc sh_runs
.if LBC_OUTPUT_ARGMAX
    lda lbc_output
    sta sh_class
.else
    ldx #0                  ; argmax over signed bytes, first maximum wins
    stx sh_class
    lda lbc_output
    eor #$80
    sta sh_best
@am:
    inx
    cpx #LBC_OUTPUT_SIZE
    beq @amd
    lda lbc_output,x
    eor #$80
    cmp sh_best
    bcc @am
    beq @am
    sta sh_best
    stx sh_class
    jmp @am
@amd:
.endif
    jsr draw_image
    jsr draw_info
    bit PPUSTATUS
    lda #0
    sta PPUSCROLL
    sta PPUSCROLL
@vb:
    bit PPUSTATUS
    bpl @vb
    lda #%10000000          ; NMI on, background from pattern table 0
    sta PPUCTRL
    lda #%00001010          ; background on (including the left 8 pixels)
    sta PPUMASK
    lda #STATUS_DONE
    sta sh_status
    rts

draw_image:
    ldx sh_sample
    lda sh_in_lo,x
    sta sh_ptr
    lda sh_in_hi,x
    sta sh_ptr+1
    lda #0
    sta sh_idx
@row:
    ldx sh_idx
    cpx sh_nrows
    beq @done
    lda sh_rows_hi,x
    sta PPUADDR
    lda sh_rows_lo,x
    sta PPUADDR
    ldy sh_rows_off,x
    lda sh_imgw
    sta sh_cnt
@col:
    lda (sh_ptr),y          ; the input value -> its grey tile
    tax
    lda sh_levels,x
    sta PPUDATA
    bit sh_scale
    bpl @one
    sta PPUDATA
@one:
    iny
    dec sh_cnt
    bne @col
    inc sh_idx
    bne @row
@done:
    rts

draw_info:
    at 6, TEXT_COL + 7
    lda sh_sample
    clc
    adc #1
    jsr put_u8
    at 9, TEXT_COL + 6
    ldx sh_sample
    lda sh_labels,x
    cmp #$FF
    bne @lab
    lda #'-'
    sta PPUDATA
    sta PPUDATA
    sta PPUDATA
    jmp @cls
@lab:
    jsr put_u8
@cls:
    at 10, TEXT_COL + 6
    lda sh_class
    jsr put_u8
    at 11, TEXT_COL
    ldx sh_sample
    lda sh_labels,x
    cmp #$FF
    beq @unk
    cmp sh_class
    bne @miss
    lda #<txt_ok
    ldy #>txt_ok
    jsr puts
    jmp @cyc
@miss:
    lda #<txt_miss
    ldy #>txt_miss
    jsr puts
    jmp @cyc
@unk:
    lda #<txt_blank
    ldy #>txt_blank
    jsr puts
@cyc:
    at 14, TEXT_COL + 1
    lda sh_sample            ; sh_cycles + 6 * sample
    asl a
    adc sh_sample
    asl a
    tax
    ldy #6
@cd:
    lda sh_cycles,x
    sta PPUDATA
    inx
    dey
    bne @cd
.if LBC_OUTPUT_ARGMAX = 0
    lda #0                  ; the raw outputs, one per row
    sta sh_idx
@out:
    lda sh_idx
    cmp #LBC_OUTPUT_SIZE
    beq @outd
    cmp #10
    beq @outd
    lsr a                   ; PPU address = row 17 + idx, column TEXT_COL
    lsr a
    lsr a
    sta sh_tmp
    lda sh_idx
    asl a
    asl a
    asl a
    asl a
    asl a
    clc
    adc #<($2000 + 17 * 32 + TEXT_COL)
    tax
    lda sh_tmp
    adc #>($2000 + 17 * 32 + TEXT_COL)
    sta PPUADDR
    stx PPUADDR
    lda sh_idx
    ora #'0'
    sta PPUDATA
    lda #' '
    sta PPUDATA
    ldx sh_idx
    lda lbc_output,x
    jsr put_s8
    inc sh_idx
    jmp @out
@outd:
.endif
    rts

; ---- A = unsigned byte -> 3 characters (leading blanks) at the current PPU address
put_u8:
    jsr to_dec
    ldx #1
    jmp put_dig

; ---- A = signed byte -> 4 characters, the sign right before the first digit
put_s8:
    ldy #'+'
    tax
    bpl @pos
    ldy #'-'
    eor #$FF
    clc
    adc #1
@pos:
    sty sh_best              ; (free here) the sign
    jsr to_dec
    ldx #0
@find:
    lda sh_dig+1,x
    cmp #' '
    bne @put
    inx
    cpx #2
    bne @find
@put:
    lda sh_best
    sta sh_dig,x
    ldx #0
    ; fall through

; ---- sh_dig+X .. sh_dig+3 to the PPU
put_dig:
    lda sh_dig,x
    sta PPUDATA
    inx
    cpx #4
    bne put_dig
    rts

; ---- A -> sh_dig = ' ', hundreds, tens, ones (leading zeros blank)
to_dec:
    ldx #'0' - 1
    sec
@h:
    inx
    sbc #100
    bcs @h
    adc #100
    stx sh_dig+1
    ldx #'0' - 1
    sec
@t:
    inx
    sbc #10
    bcs @t
    adc #10
    stx sh_dig+2
    ora #'0'
    sta sh_dig+3
    lda #' '
    sta sh_dig
    ldx sh_dig+1
    cpx #'0'
    bne @d
    sta sh_dig+1
    ldx sh_dig+2
    cpx #'0'
    bne @d
    sta sh_dig+2
@d:
    rts

; ---- zero-terminated string at (A lo, Y hi) to the current PPU address
puts:
    sta sh_ptr
    sty sh_ptr+1
    ldy #0
@c:
    lda (sh_ptr),y
    beq @d
    sta PPUDATA
    iny
    bne @c
@d:
    rts

load_palette:
    lda #$3F
    sta PPUADDR
    lda #$00
    sta PPUADDR
    ldx #0
@p:
    lda palette,x
    sta PPUDATA
    inx
    cpx #32
    bne @p
    rts

clear_screen:
    lda #$20
    sta PPUADDR
    lda #$00
    sta PPUADDR
    ldy #4
    ldx #0
    lda #' '
@c:
    cpy #1
    bne @n
    cpx #$C0                ; the last 64 bytes are the attribute table: palette 0
    bcc @n
    lda #0
@n:
    sta PPUDATA
    inx
    bne @c
    dey
    bne @c
    rts

draw_static:
    print 2, 2, txt_title
    at 2, 10
    lda #<sh_title
    ldy #>sh_title
    jsr puts
    at 3, 2
    lda #<sh_quant
    ldy #>sh_quant
    jsr puts
    print 6, TEXT_COL, txt_sample
    at 7, TEXT_COL + 4
    lda #<txt_of
    ldy #>txt_of
    jsr puts
    lda sh_nsamples
    jsr put_u8
    print 9, TEXT_COL, txt_label
    print 10, TEXT_COL, txt_class
    print 13, TEXT_COL, txt_cycles
    print 27, 2, txt_help
.if LBC_OUTPUT_ARGMAX = 0
    print 16, TEXT_COL, txt_outputs
.endif
    rts

.segment "RODATA"
palette:
    .byte $0F, $00, $10, $30,  $0F, $00, $10, $30,  $0F, $00, $10, $30,  $0F, $00, $10, $30
    .byte $0F, $00, $10, $30,  $0F, $00, $10, $30,  $0F, $00, $10, $30,  $0F, $00, $10, $30
txt_title:   .byte "LBC NES", 0
txt_sample:  .byte "SAMPLE", 0
txt_of:      .byte "OF", 0
txt_label:   .byte "LABEL", 0
txt_class:   .byte "CLASS", 0
txt_cycles:  .byte "CYCLES", 0
txt_outputs: .byte "OUTPUTS", 0
txt_ok:      .byte "MATCH ", 0
txt_miss:    .byte "MISS  ", 0
txt_blank:   .byte "      ", 0
txt_help:    .byte "< > A B: SAMPLE", 0

.segment "VECTORS"
    .word nmi, reset, irq
