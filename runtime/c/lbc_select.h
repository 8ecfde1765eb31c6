/* lbc selection kernels: ops whose every output element is one input element (slice, gather,
 * nearest resize, pad in any mode) or a reduction over a fixed set of input elements (max, sum).
 * The compiler computes the index tables from the reference interpreter's own op definitions, so
 * one kernel per kind serves every such op. Index -1 means "no element" (padding). */
#ifndef LBC_SELECT_H
#define LBC_SELECT_H

#include <stdint.h>

#include "lbc_ops.h"

/* y[i] = idx[i] >= 0 ? x[idx[i]] : fill, for i < n */
void lbc_select(const int8_t *x, int8_t *y, int n, const int32_t *idx, int8_t fill);

/* y[o] = max over j < cnt of x[idx[o * cnt + j]] (entries -1 skipped), for o < n */
void lbc_select_max(const int8_t *x, int8_t *y, int n, int cnt, const int32_t *idx);

/* y[o] = requant(sum over j < cnt of x[idx[o * cnt + j]]), for o < n */
void lbc_select_sum(const int8_t *x, int8_t *y, int n, int cnt, const int32_t *idx, const lbc_requant_t *q);

#endif
