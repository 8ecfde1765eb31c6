"""The pentary target's toolchain: ISA table (`isa`), assembler (`asm`), disassembler (`disasm`),
object file (`image`), simulator (`sim`) and the `lbc asm/disasm/sim` subcommands (`cli`).

The specification is docs/pentary-isa.md. Modules are imported on demand so that registering the
CLI does not load lark.
"""
