; The seed's loop test (Kaleaon/Pentary tests/test_compiler_loops.py):
;     let sum = 0; for i in 0..5 { sum = sum + i; }     -> P1 = 10
; written the way the seed simulator's dialect writes it: MOVI, compare-with-zero branches, labels.

main:
        MOVI    P1, 0           # sum
        MOVI    P2, 0           # i
        MOVI    P3, 5           # limit
loop:
        SUB     P4, P2, P3      # P4 = i - limit
        BGE     P4, done        # one register: compares with zero (i >= limit)
        ADD     P1, P1, P2      # sum += i
        ADDI    P2, P2, 1       # i++
        JUMP    loop
done:
        HALT
