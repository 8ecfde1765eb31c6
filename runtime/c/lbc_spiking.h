/* lbc_spiking.h - integer kernels of lbc's stateful spiking ops for the host target.
 *
 * Shipped with lbc (runtime/c/); copied verbatim into host builds of models with state. They implement
 * the integer semantics of lbc.ir.ops.spiking bit for bit:
 *   leak = s ? (v * d + (1 << (s-1))) >> s : v * d          (">>" arithmetic: leak rounded half up)
 *   u    = clamp(v - leak + c + I, -2^30, 2^30)
 *   lif: z = u > thr; v' = z ? vr : u (reset to a value) or v' = u - z * vr (reset by subtraction)
 *   li:  v' = u; y = requant(u) per neuron
 * The state v (int32) is updated in place. A dense layer whose input is spikes (0/1) adds the weight
 * column of every active input: cost proportional to the number of spikes, no multiplies.
 */
#ifndef LBC_SPIKING_H
#define LBC_SPIKING_H

#include <stdint.h>

#include "lbc_ops.h"

typedef struct {
    const int32_t *d, *c;  /* leak multiplier and constant, n entries (or 1 for all) */
    int nd, nc, s;
    const int32_t *thr, *vr; /* lif only: threshold and reset value (or subtracted amount) */
    int nthr, nvr;
    int subtract;          /* lif: 1 = reset by subtraction, 0 = reset to vr */
} lbc_neuron_t;

/* acc[j] = bias[j] + sum over i with x[i] != 0 of wt[i * out + j]; wt is the weight transposed ([in][out],
 * int8). For spikes (x in {0, 1}) this is the dense layer. */
void lbc_dense_spikes(const int8_t *x, int32_t *acc, int in_features, int out_features, const int8_t *wt,
                      const int32_t *bias);
/* acc[j] = bias[j] + sum_i x[i] * wt[i * out + j] (an int8 input that is not spikes) */
void lbc_dense_acc(const int8_t *x, int32_t *acc, int in_features, int out_features, const int8_t *wt,
                   const int32_t *bias);

void lbc_lif(const void *current, int current_is_acc, int32_t *v, int8_t *z, int n, const lbc_neuron_t *p);
void lbc_li(const void *current, int current_is_acc, int32_t *v, int8_t *y, int n, const lbc_neuron_t *p,
            const lbc_requant_t *q);
/* z = x > thr (per element of the last axis: thr[i % nthr]) */
void lbc_threshold(const int8_t *x, int8_t *z, int n, const int32_t *thr, int nthr);

#endif
