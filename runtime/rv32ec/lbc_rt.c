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

void lbc_move(const int8_t *x, int8_t *y, const lbc_walk_t *w, int shift)
{
    int r = shift > 0 ? 1 << (shift - 1) : 0;
    for (int i0 = 0; i0 < w->n[0]; i0++, x += w->dx[0], y += w->dy[0])
        for (int i1 = 0; i1 < w->n[1]; i1++, x += w->dx[1], y += w->dy[1])
            for (int i2 = 0; i2 < w->n[2]; i2++, x += w->dx[2], y += w->dy[2])
                for (int i3 = 0; i3 < w->n[3]; i3++, x += w->dx[3], y += w->dy[3]) {
                    int v = (*x + r) >> shift;
                    *y = (int8_t)(v > 127 ? 127 : v);
                }
}

void lbc_fill(int8_t *y, int n, int v)
{
    for (int i = 0; i < n; i++) y[i] = (int8_t)v;
}

void lbc_table(const int8_t *x, int8_t *y, int n, const int8_t *table)
{
    for (int i = 0; i < n; i++) y[i] = table[x[i] + 128];
}

/* a * b for |b| <= 128 by shifts and adds (RV32EC has no multiply instruction) */
static int32_t lbc_mul8(int32_t a, int32_t b)
{
    uint32_t ub = (uint32_t)(b < 0 ? -b : b), ua = (uint32_t)a, r = 0;
    for (; ub; ub >>= 1, ua <<= 1)
        if (ub & 1) r += ua;
    return b < 0 ? -(int32_t)r : (int32_t)r;
}

void lbc_leaky_relu(const int8_t *x, int8_t *y, int n, int m, int k)
{
    int32_t r = k > 0 ? 1 << (k - 1) : 0;
    for (int i = 0; i < n; i++) {
        int32_t v = x[i];
        if (v < 0) {
            v = (lbc_mul8(m, v) + r) >> k;
            v = v < -128 ? -128 : v > 127 ? 127 : v;
        }
        y[i] = (int8_t)v;
    }
}

void lbc_binary(const int8_t *a, const int8_t *b, int8_t *y, const lbc_walk_t *w, int op, int sa, int sb,
                lbc_rq_fn rq)
{
    for (int i0 = 0; i0 < w->n[0]; i0++, a += w->dx[0], b += w->dy[0])
        for (int i1 = 0; i1 < w->n[1]; i1++, a += w->dx[1], b += w->dy[1])
            for (int i2 = 0; i2 < w->n[2]; i2++, a += w->dx[2], b += w->dy[2])
                for (int i3 = 0; i3 < w->n[3]; i3++, a += w->dx[3], b += w->dy[3], y++) {
                    int32_t acc = op ? lbc_mul8(*a, *b)
                                     : (int32_t)(((uint32_t)(int32_t)*a << sa) + ((uint32_t)(int32_t)*b << sb));
                    rq(&acc, y, 1);
                }
}

void lbc_tile_crop(const int8_t *x, int8_t *t, const lbc_tile_t *g, int y0, int x0, int off)
{
    unsigned h = (unsigned)g->h, w = (unsigned)g->w;
    for (int c = 0; c < g->c; c++, x += g->hw) {
        int row = off;
        for (int i = 0; i < g->th; i++, row += g->w) {
            int in_row = (unsigned)(y0 + i) < h;
            for (int j = 0; j < g->tw; j++)
                *t++ = (in_row && (unsigned)(x0 + j) < w) ? x[row + j] : (int8_t)g->fill;
        }
    }
}

void lbc_tile_mask(int8_t *t, const lbc_tile_t *g, int y0, int x0)
{
    unsigned h = (unsigned)g->h, w = (unsigned)g->w;
    if (y0 >= 0 && x0 >= 0 && y0 + g->th <= g->h && x0 + g->tw <= g->w)
        return;  /* an inner tile: nothing outside the map */
    for (int c = 0; c < g->c; c++)
        for (int i = 0; i < g->th; i++) {
            int in_row = (unsigned)(y0 + i) < h;
            for (int j = 0; j < g->tw; j++, t++)
                if (!in_row || (unsigned)(x0 + j) >= w) *t = (int8_t)g->fill;
        }
}

void lbc_tile_place(const int8_t *t, int8_t *y, const lbc_tile_t *g, int y0, int x0, int off)
{
    unsigned h = (unsigned)g->h, w = (unsigned)g->w;
    for (int c = 0; c < g->c; c++, y += g->hw) {
        int row = off;
        for (int i = 0; i < g->th; i++, row += g->w) {
            int in_row = (unsigned)(y0 + i) < h;
            for (int j = 0; j < g->tw; j++, t++)
                if (in_row && (unsigned)(x0 + j) < w) y[row + j] = *t;
        }
    }
}
