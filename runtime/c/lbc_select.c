/* lbc selection kernels (see lbc_select.h). */
#include "lbc_select.h"

void lbc_select(const int8_t *x, int8_t *y, int n, const int32_t *idx, int8_t fill)
{
    for (int i = 0; i < n; i++) y[i] = idx[i] >= 0 ? x[idx[i]] : fill;
}

void lbc_select_max(const int8_t *x, int8_t *y, int n, int cnt, const int32_t *idx)
{
    for (int o = 0; o < n; o++) {
        int best = -129;
        for (int j = 0; j < cnt; j++) {
            int32_t i = idx[(long)o * cnt + j];
            if (i >= 0 && x[i] > best) best = x[i];
        }
        y[o] = (int8_t)best;
    }
}

void lbc_select_sum(const int8_t *x, int8_t *y, int n, int cnt, const int32_t *idx, const lbc_requant_t *q)
{
    for (int o = 0; o < n; o++) {
        int64_t acc = 0;
        for (int j = 0; j < cnt; j++) {
            int32_t i = idx[(long)o * cnt + j];
            if (i >= 0) acc += x[i];
        }
        y[o] = lbc_requant(acc, q, 0);
    }
}
