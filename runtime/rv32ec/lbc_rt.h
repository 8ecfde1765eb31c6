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


/* A strided walk over up to 4 dimensions: n[4] counts (outermost first) and, per operand, the pointer
 * step d[4] taken after each element of that dimension (d[3] is the innermost stride; d[j] for j < 3 is
 * the stride of dimension j minus what the inner dimensions already advanced; precomputed by the
 * compiler: the part has no multiplier). */
typedef struct {
    int16_t n[4];
    int16_t dx[4];
    int16_t dy[4];
} lbc_walk_t;

/* y[walk] = clamp(rounding_shift(x[walk], shift), -128, 127): transpose, the interior of a pad, one part
 * of a concat (shift >= 0; 0 copies). */
void lbc_move(const int8_t *x, int8_t *y, const lbc_walk_t *w, int shift);
/* y[i] = v for i < n */
void lbc_fill(int8_t *y, int n, int v);
/* y[i] = x[i] if x[i] >= 0 else clamp((x[i] * m + round) >> k, -128, 127): leaky ReLU (m <= 255). */
void lbc_leaky_relu(const int8_t *x, int8_t *y, int n, int m, int k);
/* y[i] = table[x[i] + 128] for i < n: every 256-entry table activation (sigmoid, tanh, ...). */
void lbc_table(const int8_t *x, int8_t *y, int n, const int8_t *table);

/* Two activations (or an activation and a constant) combined element by element over the output walk
 * w (dx: a's steps, dy: b's steps; 0 on a broadcast axis), results stored contiguously in y:
 * op 0 = rq((a << sa) + (b << sb)) (add), op 1 = rq(a * b) (multiply, by shifts and adds). */
void lbc_binary(const int8_t *a, const int8_t *b, int8_t *y, const lbc_walk_t *w, int op, int sa, int sb,
                lbc_rq_fn rq);

/* Patch-based execution (lbc.ir.patch): one tile of a layer's map, c x th x tw pixels, cut from the
 * c x h x w map (hw = h * w); pixels outside the map hold `fill`. (y0, x0) is the tile's origin in the
 * map, off = y0 * w + x0 (kept by the caller's loop: no multiply). */
typedef struct {
    int16_t c, th, tw, h, w, hw, fill;
} lbc_tile_t;

/* t = the tile of the full map x at (y0, x0), fill outside the map */
void lbc_tile_crop(const int8_t *x, int8_t *t, const lbc_tile_t *g, int y0, int x0, int off);
/* the pixels of tile t outside the map = fill (the next layer's padding) */
void lbc_tile_mask(int8_t *t, const lbc_tile_t *g, int y0, int x0);
/* the tile's pixels inside the map written into the full map y */
void lbc_tile_place(const int8_t *t, int8_t *y, const lbc_tile_t *g, int y0, int x0, int off);

#endif
