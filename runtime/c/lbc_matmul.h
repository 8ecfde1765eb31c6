/* lbc matmul kernel: a @ b for two int8 activations (or an activation and a constant), with numpy
 * broadcasting of the leading axes resolved by the compiler into per-output offset tables. */
#ifndef LBC_MATMUL_H
#define LBC_MATMUL_H

#include <stdint.h>

#include "lbc_ops.h"

/* y[o] = requant(sum over k < K of a[arow[o] + k] * b[bcol[o] + k * N]), for o < n */
void lbc_matmul(const int8_t *a, const int8_t *b, int8_t *y, int n, int K, int N, const int32_t *arow,
                const int32_t *bcol, const lbc_requant_t *q);

#endif
