/* lbc matmul kernel (see lbc_matmul.h). |acc| <= 128 * 128 * K: the quantize pass proves
 * acc * m + round fits 32 bits; int64 here keeps the C obviously equal to the interpreter. */
#include "lbc_matmul.h"

void lbc_matmul(const int8_t *a, const int8_t *b, int8_t *y, int n, int K, int N, const int32_t *arow,
                const int32_t *bcol, const lbc_requant_t *q)
{
    for (int o = 0; o < n; o++) {
        int64_t acc = 0;
        for (int k = 0; k < K; k++) acc += (int32_t)a[arow[o] + k] * b[bcol[o] + (long)k * N];
        y[o] = lbc_requant(acc, q, 0);
    }
}
