/* lbc_pointwise.c - host kernels for masks, where and per-channel PReLU. See lbc_pointwise.h. */
#include "lbc_pointwise.h"

/* A row-major multi-index over the output shape; `offset` maps it to an operand through its strides. */
typedef struct {
    int idx[8];
} lbc_walk_t;

static long offset(const lbc_walk_t *w, int rank, const int *stride)
{
    long o = 0;
    for (int d = 0; d < rank; d++) o += (long)w->idx[d] * stride[d];
    return o;
}

static void step(lbc_walk_t *w, int rank, const int *shape)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++w->idx[d] < shape[d]) return;
        w->idx[d] = 0;
    }
}

static long count(int rank, const int *shape)
{
    long n = 1;
    for (int d = 0; d < rank; d++) n *= shape[d];
    return n;
}

void lbc_compare(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
                 const int *bstride, int sa, int sb, int op)
{
    lbc_walk_t w = {{0}};
    long n = count(rank, shape);
    for (long i = 0; i < n; i++, step(&w, rank, shape)) {
        int64_t va = (int64_t)a[offset(&w, rank, astride)] * ((int64_t)1 << sa);
        int64_t vb = (int64_t)b[offset(&w, rank, bstride)] * ((int64_t)1 << sb);
        y[i] = (int8_t)(op == LBC_CMP_EQ ? va == vb : op == LBC_CMP_LT ? va < vb : op == LBC_CMP_GT ? va > vb
                        : op == LBC_CMP_GE ? va >= vb : va <= vb);
    }
}

void lbc_logic(const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape, const int *astride,
               const int *bstride, int op)
{
    lbc_walk_t w = {{0}};
    long n = count(rank, shape);
    for (long i = 0; i < n; i++, step(&w, rank, shape)) {
        int va = a[offset(&w, rank, astride)] != 0, vb = b[offset(&w, rank, bstride)] != 0;
        y[i] = (int8_t)(op == LBC_LOGIC_AND ? va && vb : va || vb);
    }
}

void lbc_not(const int8_t *x, int8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = (int8_t)!x[i];
}

void lbc_where(const int8_t *c, const int8_t *a, const int8_t *b, int8_t *y, int rank, const int *shape,
               const int *cstride, const int *astride, const int *bstride, int sa, int sb, const lbc_requant_t *q)
{
    lbc_walk_t w = {{0}};
    long n = count(rank, shape);
    for (long i = 0; i < n; i++, step(&w, rank, shape)) {
        int64_t v = c[offset(&w, rank, cstride)] ? (int64_t)a[offset(&w, rank, astride)] * ((int64_t)1 << sa)
                                                 : (int64_t)b[offset(&w, rank, bstride)] * ((int64_t)1 << sb);
        y[i] = lbc_requant(v, q, 0);
    }
}

void lbc_prelu(const int8_t *x, int8_t *y, int outer, int channels, int inner, const lbc_requant_t *q)
{
    for (int o = 0; o < outer; o++)
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < inner; i++) {
                long at = ((long)o * channels + c) * inner + i;
                y[at] = x[at] >= 0 ? x[at] : lbc_requant(x[at], q, c);
            }
}
