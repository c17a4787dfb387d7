/*
 * cffi cdef of qverify._stats (read by build.py): the declarations of
 * qv_stats.h in the subset of C that cffi parses.  cffi checks the struct
 * layout and takes the constants' values from qv_stats.h when it compiles.
 */

#define QV_ERR_BINS ...
#define QV_HIST_BINS ...

typedef struct {
    uint64_t count;
    uint64_t saturating;
    double sum_f2;
    double sum_dd;
    double sum_df;
    float d_abs_max;
    float f_min;
    float f_max;
    int32_t q_min;
    int32_t q_max;
    int64_t hist[...];
} qv_summary_t;

typedef struct {
    uint64_t count;
    uint64_t saturating;
    float f_min;
    float f_max;
} qv_range_t;

void qv_summarize(const float *f, const int16_t *q, size_t n, int frac, int32_t qmin, int32_t qmax,
                  qv_summary_t *out);
void qv_float_range(const float *f, size_t n, int frac, int32_t qmin, int32_t qmax, qv_range_t *out);
size_t qv_equal_samples(const void *a, const void *b, size_t samples, size_t bytes_per_sample, uint8_t *out);
int32_t qv_stats_simd(int32_t allow);
const char *qv_stats_digest(void);
