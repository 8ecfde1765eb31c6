/* lbc_ops.h - integer reference kernels for lbc's host target.
 *
 * Shipped with lbc (runtime/c/); copied verbatim into every host build. These kernels implement the
 * integer semantics of lbc's reference interpreter (lbc.ir.ops / lbc.ir.quant) in portable C99:
 *   requant(acc) = clamp((acc * m + (k ? 1 << (k-1) : 0)) >> k, lo, hi), ">>" arithmetic.
 * Weights are packed per output row, each row padded to whole bytes:
 *   LBC_W_I8       one int8 per byte
 *   LBC_W_I4       two per byte, element 2i in the low nibble, two's complement
 *   LBC_W_I2       four per byte, element 4i+j in bits 2j..2j+1, two's complement {-2..1}
 *   LBC_W_TERNARY  five per byte, byte = sum_j (w_j + 1) * 3^j          (1.6 bits per weight)
 *   LBC_W_PENTARY  three per byte, byte = sum_j (w_j + 2) * 5^j         (2.67 bits per weight)
 * Tensors are C-contiguous without the batch dimension (one sample per call).
 */
#ifndef LBC_OPS_H
#define LBC_OPS_H

#include <stdint.h>

enum { LBC_W_I8 = 0, LBC_W_I4 = 1, LBC_W_I2 = 2, LBC_W_TERNARY = 3, LBC_W_PENTARY = 4 };

typedef struct {
    const uint8_t *data; /* packed rows */
    int code;            /* LBC_W_* */
    int row_bytes;       /* bytes per output row */
} lbc_weights_t;

typedef struct {
    const int32_t *m;    /* multipliers, n entries */
    const uint8_t *k;    /* shifts, n entries */
    int n;               /* 1 (per tensor) or the channel count */
    int lo, hi;          /* output clamp */
} lbc_requant_t;

int8_t lbc_requant(int64_t acc, const lbc_requant_t *q, int channel);

void lbc_dense(const int8_t *x, int8_t *y, int in_features, int out_features, const lbc_weights_t *w,
               const int32_t *bias, const lbc_requant_t *q);

void lbc_conv2d(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                const int *strides, const int *pads, const int *dilations, int group, const lbc_weights_t *w,
                const int32_t *bias, const lbc_requant_t *q);

void lbc_maxpool(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                 const int *strides, const int *pads);

void lbc_avgpool(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                 const int *strides, const int *pads, const lbc_requant_t *q);

void lbc_global_avgpool(const int8_t *x, int8_t *y, int channels, int spatial, const lbc_requant_t *q);

/* y = requant((a << sa) OP (b << sb)) over an output of `rank` dims with per-operand strides
 * (0 where an operand is broadcast). op: 0 = add, 1 = multiply, 2 = max, 3 = min. */
void lbc_binary(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
                const int *bstride, int sa, int sb, int op, const lbc_requant_t *q);

void lbc_relu(const int8_t *x, int8_t *y, int n);
void lbc_leaky_relu(const int8_t *x, int8_t *y, int n, const lbc_requant_t *q);
void lbc_clip(const int8_t *x, int8_t *y, int n, int lo, int hi);
void lbc_table(const int8_t *x, int8_t *y, int n, const int8_t *table);
void lbc_copy(const int8_t *x, int8_t *y, int n);
void lbc_transpose(const int8_t *x, int8_t *y, int rank, const int *in_shape, const int *perm);
void lbc_pad(const int8_t *x, int8_t *y, int rank, const int *in_shape, const int *out_shape, const int *begin,
             int8_t value);
void lbc_concat_part(const int8_t *x, int8_t *y, int outer, int inner_in, int inner_out, int offset, int shift);
void lbc_argmax(const int8_t *x, int32_t *y, int outer, int n, int inner);

#include "lbc_pointwise.h" /* masks, where, prelu (runtime/c/lbc_pointwise.c) */

#endif
