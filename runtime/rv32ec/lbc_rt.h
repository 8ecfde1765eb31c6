/* lbc_rt.h - small C helpers of lbc's RV32EC target (runtime/rv32ec/, copied into every build).
 *
 * The dense kernels themselves are generated per model into lbc_kernels.S; these helpers are the
 * glue around them. Nothing here multiplies: RV32EC has no M extension and lbc keeps libgcc's
 * __mulsi3 out of the inference path.
 */
#ifndef LBC_RT_H
#define LBC_RT_H

#include <stdint.h>

/* acc[i] = bias[i] (int32 or int16 biases) or 0, for i < n */
void lbc_acc_bias32(int32_t *acc, const int32_t *bias, int n);
void lbc_acc_bias16(int32_t *acc, const int16_t *bias, int n);
void lbc_acc_zero(int32_t *acc, int n);

void lbc_copy(const int8_t *x, int8_t *y, int n);
void lbc_relu(const int8_t *x, int8_t *y, int n);
void lbc_clip(const int8_t *x, int8_t *y, int n, int lo, int hi);
/* y[o*inner + i] = index of the first maximum of x[o][0..n)[i]; span = n * inner */
void lbc_argmax(const int8_t *x, int32_t *y, int outer, int n, int inner, int span);

/* One tap of a convolution window: the input offset c*H*W + ky*dil*W + kx*dil of the tap relative to the
 * window's top-left corner, and its row and column within the window (ky*dil, kx*dil). */
typedef struct {
    int16_t off;
    int8_t dy, dx;
} lbc_tap_t;

/* Window geometry: input height and width. */
typedef struct {
    int16_t h, w;
} lbc_hw_t;

/* patch[t] = x[base + tap[t].off] when the tap at row iy0 + dy, column ix0 + dx is inside the h x w
 * input, else 0 (the zero padding of a convolution). base = iy0 * w + ix0, kept by the caller. */
void lbc_gather(const int8_t *x, int base, int8_t *patch, const lbc_tap_t *tap, int n, int iy0, int ix0,
                const lbc_hw_t *hw);
/* y[i * stride] = t[i], for i < n */
void lbc_scatter(const int8_t *t, int8_t *y, int n, int stride);

/* A generated requantisation kernel: y[i] = clamp((acc[i] * m + round) >> k, lo, hi) for i < n, with the
 * layer's constant m, k, lo, hi (lbc_kernels.S; shifts and adds, no multiply). */
typedef void (*lbc_rq_fn)(const int32_t *acc, int8_t *y, int n);

/* Max pooling of a [c, h, w] tensor; g = {c, h, w, oh, ow, kh, kw, sy, sx, pt, pl, sy*w,
 * h*w, -pt*w} (products precomputed: the part has no multiplier).
 * Padding never wins. */
void lbc_maxpool(const int8_t *x, int8_t *y, const int16_t *g);
/* Average pooling, same geometry: each window's sum (padding counts as 0, the divisor is in rq's m and k)
 * requantised by rq. */
void lbc_avgpool(const int8_t *x, int8_t *y, const int16_t *g, lbc_rq_fn rq);
/* Global average pooling of c channels of hw values each: rq(sum of the channel). */
void lbc_global_avgpool(const int8_t *x, int8_t *y, int c, int hw, lbc_rq_fn rq);
/* y[i] = rq((a[i] << sa) + (b[i] << sb)), for i < n: the residual add. */
void lbc_add(const int8_t *a, const int8_t *b, int8_t *y, int n, int sa, int sb, lbc_rq_fn rq);

#endif
