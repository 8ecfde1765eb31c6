/* lbc_rt.c - small C helpers of lbc's RV32EC target. See lbc_rt.h. */
#include "lbc_rt.h"

void lbc_acc_bias32(int32_t *acc, const int32_t *bias, int n)
{
    for (int i = 0; i < n; i++) acc[i] = bias[i];
}

void lbc_acc_bias16(int32_t *acc, const int16_t *bias, int n)
{
    for (int i = 0; i < n; i++) acc[i] = bias[i];
}

void lbc_acc_zero(int32_t *acc, int n)
{
    for (int i = 0; i < n; i++) acc[i] = 0;
}

void lbc_copy(const int8_t *x, int8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = x[i];
}

void lbc_relu(const int8_t *x, int8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

void lbc_clip(const int8_t *x, int8_t *y, int n, int lo, int hi)
{
    for (int i = 0; i < n; i++) y[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

void lbc_argmax(const int8_t *x, int32_t *y, int outer, int n, int inner, int span)
{
    /* pointer walks with the caller's precomputed span = n * inner: no multiply on a part without one */
    for (int o = 0; o < outer; o++, x += span) {
        for (int i = 0; i < inner; i++) {
            const int8_t *p = x + i;
            int best = 0, bv = *p;
            for (int j = 1; j < n; j++) {
                p += inner;
                if (*p > bv) { bv = *p; best = j; }
            }
            *y++ = best;
        }
    }
}

void lbc_gather(const int8_t *x, int base, int8_t *patch, const lbc_tap_t *tap, int n, int iy0, int ix0,
                const lbc_hw_t *hw)
{
    unsigned h = (unsigned)hw->h, w = (unsigned)hw->w;
    for (int t = 0; t < n; t++, tap++) {
        unsigned iy = (unsigned)(iy0 + tap->dy), ix = (unsigned)(ix0 + tap->dx);
        patch[t] = (iy < h && ix < w) ? x[base + tap->off] : 0;
    }
}

void lbc_scatter(const int8_t *t, int8_t *y, int n, int stride)
{
    for (int i = 0; i < n; i++, y += stride) *y = t[i];
}

/* Max (rq == 0) or requantised sum over each window. */
static void lbc_pool(const int8_t *x, int8_t *y, const int16_t *g, lbc_rq_fn rq)
{
    int c = g[0], h = g[1], w = g[2], oh = g[3], ow = g[4], kh = g[5], kw = g[6], sy = g[7], sx = g[8];
    int syw = g[11], hw = g[12];
    for (int ch = 0; ch < c; ch++, x += hw) {
        int iy0 = -g[9], row = g[13];
        for (int oy = 0; oy < oh; oy++, iy0 += sy, row += syw) {
            int ix0 = -g[10];
            for (int ox = 0; ox < ow; ox++, ix0 += sx, y++) {
                int32_t acc = rq ? 0 : -32768;
                int r = row;
                for (int ky = 0; ky < kh; ky++, r += w) {
                    if ((unsigned)(iy0 + ky) >= (unsigned)h) continue;
                    for (int kx = 0; kx < kw; kx++) {
                        if ((unsigned)(ix0 + kx) >= (unsigned)w) continue;
                        int v = x[r + ix0 + kx];
                        if (rq) acc += v;
                        else if (v > acc) acc = v;
                    }
                }
                if (rq) rq(&acc, y, 1);
                else *y = (int8_t)acc;
            }
        }
    }
}

void lbc_maxpool(const int8_t *x, int8_t *y, const int16_t *g)
{
    lbc_pool(x, y, g, 0);
}

void lbc_avgpool(const int8_t *x, int8_t *y, const int16_t *g, lbc_rq_fn rq)
{
    lbc_pool(x, y, g, rq);
}

void lbc_global_avgpool(const int8_t *x, int8_t *y, int c, int hw, lbc_rq_fn rq)
{
    for (int ch = 0; ch < c; ch++, y++) {
        int32_t acc = 0;
        for (int i = 0; i < hw; i++) acc += *x++;
        rq(&acc, y, 1);
    }
}

void lbc_add(const int8_t *a, const int8_t *b, int8_t *y, int n, int sa, int sb, lbc_rq_fn rq)
{
    for (int i = 0; i < n; i++) {
        /* shifts of the unsigned bit patterns: defined for negative values, same two's-complement result */
        int32_t acc = (int32_t)(((uint32_t)(int32_t)a[i] << sa) + ((uint32_t)(int32_t)b[i] << sb));
        rq(&acc, y + i, 1);
    }
}
