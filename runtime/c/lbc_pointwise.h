/* lbc_pointwise.h - host kernels for masks (comparisons, boolean logic, where) and per-channel PReLU.
 *
 * Shipped with lbc (runtime/c/); copied into every host build next to lbc_ops.h, which includes it.
 * Integer semantics are those of lbc.ir.ops.logic and lbc.ir.ops.pointwise. Masks are one byte per
 * value, 0 or 1. Broadcasting kernels walk an output of `rank` dims with per-operand element strides
 * (0 along a broadcast axis), exactly like lbc_binary. Every pointwise nonlinear function (sigmoid,
 * exp, gelu, ...) is a 256-entry table: see lbc_table in lbc_ops.h.
 */
#ifndef LBC_POINTWISE_H
#define LBC_POINTWISE_H

#include <stdint.h>

#include "lbc_ops.h"

enum { LBC_CMP_EQ = 0, LBC_CMP_LT = 1, LBC_CMP_GT = 2, LBC_CMP_GE = 3, LBC_CMP_LE = 4 };
enum { LBC_LOGIC_AND = 0, LBC_LOGIC_OR = 1 };

/* y = (a << sa) CMP (b << sb), a 0/1 mask. */
void lbc_compare(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
                 const int *bstride, int sa, int sb, int op);

/* y = a AND/OR b on 0/1 masks. */
void lbc_logic(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
               const int *bstride, int op);

/* y = !x on a 0/1 mask of n values. */
void lbc_not(const int8_t *x, int8_t *y, int n);

/* y = requant(c ? a << sa : b << sb). */
void lbc_where(const int8_t *c, const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape,
               const int *cstride, const int *astride, const int *bstride, int sa, int sb, const lbc_requant_t *q);

/* y = x >= 0 ? x : requant(x, channel) over [outer, channels, inner] (q per channel, m negative for a
 * negative slope). */
void lbc_prelu(const int8_t *x, int8_t *y, int outer, int channels, int inner, const lbc_requant_t *q);

#endif
