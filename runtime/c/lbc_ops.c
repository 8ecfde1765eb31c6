/* lbc_ops.c - integer reference kernels for lbc's host target. See lbc_ops.h. */
#include "lbc_ops.h"

int8_t lbc_requant(int64_t acc, const lbc_requant_t *q, int channel)
{
    int c = q->n == 1 ? 0 : channel;
    int k = q->k[c];
    int64_t v = acc * (int64_t)q->m[c] + (k ? ((int64_t)1 << (k - 1)) : 0);
    v >>= k; /* arithmetic shift: floor division by 2^k */
    if (v < q->lo) v = q->lo;
    if (v > q->hi) v = q->hi;
    return (int8_t)v;
}

static int weight_at(const lbc_weights_t *w, int row, int i)
{
    const uint8_t *r = w->data + (long)row * w->row_bytes;
    switch (w->code) {
    case LBC_W_I8: return (int8_t)r[i];
    case LBC_W_I4: { int v = (r[i >> 1] >> ((i & 1) * 4)) & 15; return v >= 8 ? v - 16 : v; }
    case LBC_W_I2: { int v = (r[i >> 2] >> ((i & 3) * 2)) & 3; return v >= 2 ? v - 4 : v; }
    case LBC_W_TERNARY: { int v = r[i / 5]; for (int j = i % 5; j > 0; j--) v /= 3; return v % 3 - 1; }
    default: { int v = r[i / 3]; for (int j = i % 3; j > 0; j--) v /= 5; return v % 5 - 2; }
    }
}

void lbc_dense(const int8_t *x, int8_t *y, int in_features, int out_features, const lbc_weights_t *w,
               const int32_t *bias, const lbc_requant_t *q)
{
    for (int o = 0; o < out_features; o++) {
        int64_t acc = bias ? bias[o] : 0;
        for (int i = 0; i < in_features; i++)
            acc += (int64_t)x[i] * weight_at(w, o, i);
        y[o] = lbc_requant(acc, q, o);
    }
}

void lbc_conv2d(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                const int *strides, const int *pads, const int *dilations, int group, const lbc_weights_t *w,
                const int32_t *bias, const lbc_requant_t *q)
{
    int C = in_chw[0], H = in_chw[1], W = in_chw[2];
    int M = out_chw[0], OH = out_chw[1], OW = out_chw[2];
    int cg = C / group, mg = M / group;
    for (int m = 0; m < M; m++) {
        int g = m / mg;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int64_t acc = bias ? bias[m] : 0;
                for (int c = 0; c < cg; c++)
                    for (int ky = 0; ky < kernel[0]; ky++) {
                        int iy = oy * strides[0] - pads[0] + ky * dilations[0];
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < kernel[1]; kx++) {
                            int ix = ox * strides[1] - pads[1] + kx * dilations[1];
                            if (ix < 0 || ix >= W) continue;
                            int wi = (c * kernel[0] + ky) * kernel[1] + kx;
                            acc += (int64_t)x[((g * cg + c) * H + iy) * W + ix] * weight_at(w, m, wi);
                        }
                    }
                y[(m * OH + oy) * OW + ox] = lbc_requant(acc, q, m);
            }
    }
}

void lbc_maxpool(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                 const int *strides, const int *pads)
{
    int C = in_chw[0], H = in_chw[1], W = in_chw[2], OH = out_chw[1], OW = out_chw[2];
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int best = -32768;
                for (int ky = 0; ky < kernel[0]; ky++)
                    for (int kx = 0; kx < kernel[1]; kx++) {
                        int iy = oy * strides[0] - pads[0] + ky, ix = ox * strides[1] - pads[1] + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        int v = x[(c * H + iy) * W + ix];
                        if (v > best) best = v;
                    }
                y[(c * OH + oy) * OW + ox] = (int8_t)best;
            }
}

void lbc_avgpool(const int8_t *x, int8_t *y, const int *in_chw, const int *out_chw, const int *kernel,
                 const int *strides, const int *pads, const lbc_requant_t *q)
{
    int C = in_chw[0], H = in_chw[1], W = in_chw[2], OH = out_chw[1], OW = out_chw[2];
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int64_t acc = 0;
                for (int ky = 0; ky < kernel[0]; ky++)
                    for (int kx = 0; kx < kernel[1]; kx++) {
                        int iy = oy * strides[0] - pads[0] + ky, ix = ox * strides[1] - pads[1] + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        acc += x[(c * H + iy) * W + ix];
                    }
                y[(c * OH + oy) * OW + ox] = lbc_requant(acc, q, 0);
            }
}

void lbc_global_avgpool(const int8_t *x, int8_t *y, int channels, int spatial, const lbc_requant_t *q)
{
    for (int c = 0; c < channels; c++) {
        int64_t acc = 0;
        for (int i = 0; i < spatial; i++) acc += x[c * spatial + i];
        y[c] = lbc_requant(acc, q, 0);
    }
}

void lbc_binary(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
                const int *bstride, int sa, int sb, int op, const lbc_requant_t *q)
{
    int idx[8] = {0};
    long n = 1;
    for (int d = 0; d < rank; d++) n *= shape[d];
    for (long i = 0; i < n; i++) {
        long ai = 0, bi = 0;
        for (int d = 0; d < rank; d++) { ai += (long)idx[d] * astride[d]; bi += (long)idx[d] * bstride[d]; }
        int64_t va = (int64_t)a[ai] * ((int64_t)1 << sa), vb = (int64_t)b[bi] * ((int64_t)1 << sb);
        int64_t v = op == 0 ? va + vb : op == 1 ? va * vb : op == 2 ? (va > vb ? va : vb) : (va < vb ? va : vb);
        y[i] = lbc_requant(v, q, 0);
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

void lbc_relu(const int8_t *x, int8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

void lbc_leaky_relu(const int8_t *x, int8_t *y, int n, const lbc_requant_t *q)
{
    for (int i = 0; i < n; i++) y[i] = x[i] >= 0 ? x[i] : lbc_requant(x[i], q, 0);
}

void lbc_clip(const int8_t *x, int8_t *y, int n, int lo, int hi)
{
    for (int i = 0; i < n; i++) y[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

void lbc_table(const int8_t *x, int8_t *y, int n, const int8_t *table)
{
    for (int i = 0; i < n; i++) y[i] = table[x[i] + 128];
}

void lbc_copy(const int8_t *x, int8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = x[i];
}

void lbc_transpose(const int8_t *x, int8_t *y, int rank, const int *in_shape, const int *perm)
{
    int in_stride[8], out_shape[8], idx[8] = {0};
    long n = 1;
    for (int d = rank - 1, s = 1; d >= 0; d--) { in_stride[d] = s; s *= in_shape[d]; }
    for (int d = 0; d < rank; d++) { out_shape[d] = in_shape[perm[d]]; n *= out_shape[d]; }
    for (long i = 0; i < n; i++) {
        long src = 0;
        for (int d = 0; d < rank; d++) src += (long)idx[d] * in_stride[perm[d]];
        y[i] = x[src];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < out_shape[d]) break;
            idx[d] = 0;
        }
    }
}

void lbc_pad(const int8_t *x, int8_t *y, int rank, const int *in_shape, const int *out_shape, const int *begin,
             int8_t value)
{
    int idx[8] = {0};
    long n = 1;
    for (int d = 0; d < rank; d++) n *= out_shape[d];
    for (long i = 0; i < n; i++) {
        long src = 0;
        int inside = 1;
        for (int d = 0; d < rank; d++) {
            int s = idx[d] - begin[d];
            if (s < 0 || s >= in_shape[d]) inside = 0;
            src = src * in_shape[d] + s;
        }
        y[i] = inside ? x[src] : value;
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < out_shape[d]) break;
            idx[d] = 0;
        }
    }
}

void lbc_concat_part(const int8_t *x, int8_t *y, int outer, int inner_in, int inner_out, int offset, int shift)
{
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner_in; i++) {
            int64_t v = x[o * inner_in + i];
            v = shift > 0 ? (v + ((int64_t)1 << (shift - 1))) >> shift : v * ((int64_t)1 << -shift);
            y[o * inner_out + offset + i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
        }
}

void lbc_argmax(const int8_t *x, int32_t *y, int outer, int n, int inner)
{
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            int best = 0;
            for (int j = 1; j < n; j++)
                if (x[(o * n + j) * inner + i] > x[(o * n + best) * inner + i]) best = j;
            y[o * inner + i] = best;
        }
}
