/* lbc_spiking.c - see lbc_spiking.h. */
#include "lbc_spiking.h"

#define LBC_U_LIMIT (1L << 30)

void lbc_dense_spikes(const int8_t *x, int32_t *acc, int in_features, int out_features, const int8_t *wt,
                      const int32_t *bias)
{
    for (int j = 0; j < out_features; j++)
        acc[j] = bias ? bias[j] : 0;
    for (int i = 0; i < in_features; i++) {
        if (!x[i])
            continue;
        const int8_t *col = wt + (long)i * out_features;
        for (int j = 0; j < out_features; j++)
            acc[j] += col[j];
    }
}

void lbc_dense_acc(const int8_t *x, int32_t *acc, int in_features, int out_features, const int8_t *wt,
                   const int32_t *bias)
{
    for (int j = 0; j < out_features; j++)
        acc[j] = bias ? bias[j] : 0;
    for (int i = 0; i < in_features; i++) {
        const int8_t *col = wt + (long)i * out_features;
        for (int j = 0; j < out_features; j++)
            acc[j] += (int32_t)x[i] * col[j];
    }
}

/* the membrane update shared by lif and li; the current is int32 (an accumulator) or int8 */
static int32_t update(const void *current, int current_is_acc, const int32_t *v, int i, const lbc_neuron_t *p)
{
    int64_t vi = v[i];
    int64_t d = p->d[p->nd > 1 ? i : 0];
    int64_t leak = p->s ? (vi * d + (1LL << (p->s - 1))) >> p->s : vi * d;
    int64_t in = current_is_acc ? ((const int32_t *)current)[i] : ((const int8_t *)current)[i];
    int64_t u = vi - leak + p->c[p->nc > 1 ? i : 0] + in;
    if (u > LBC_U_LIMIT)
        u = LBC_U_LIMIT;
    if (u < -LBC_U_LIMIT)
        u = -LBC_U_LIMIT;
    return (int32_t)u;
}

void lbc_lif(const void *current, int current_is_acc, int32_t *v, int8_t *z, int n, const lbc_neuron_t *p)
{
    for (int i = 0; i < n; i++) {
        int32_t u = update(current, current_is_acc, v, i, p);
        int spike = u > p->thr[p->nthr > 1 ? i : 0];
        int32_t vr = p->vr[p->nvr > 1 ? i : 0];
        z[i] = (int8_t)spike;
        v[i] = p->subtract ? u - (spike ? vr : 0) : (spike ? vr : u);
    }
}

void lbc_li(const void *current, int current_is_acc, int32_t *v, int8_t *y, int n, const lbc_neuron_t *p,
            const lbc_requant_t *q)
{
    for (int i = 0; i < n; i++) {
        int32_t u = update(current, current_is_acc, v, i, p);
        v[i] = u;
        y[i] = lbc_requant(u, q, i);
    }
}

void lbc_threshold(const int8_t *x, int8_t *z, int n, const int32_t *thr, int nthr)
{
    for (int i = 0; i < n; i++)
        z[i] = (int8_t)(x[i] > thr[i % nthr]);
}
