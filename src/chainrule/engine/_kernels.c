/* Fused kernels: the Adam step in one pass over Theta where NumPy needs seven, and the
 * element-wise parts of a training step (bias + ReLU, ReLU' + the bias gradient, the
 * softmax with its cross-entropy) in one call each where NumPy needs two to eleven.
 *
 * Optional: chainrule works without this module (chainrule/optim/optimizers.py falls back
 * to NumPy and BLAS); setup.py builds it where a C compiler is available. It uses only the
 * buffer protocol, no NumPy C API, and releases the GIL while it runs.
 *
 * adam(theta, grad, m, v, beta1, beta2, alpha_t, eps_t, f64):
 *     m     <- beta1 m + (1 - beta1) g
 *     v     <- beta2 v + (1 - beta2) g^2
 *     theta <- theta - alpha_t m / (sqrt(v) + eps_t)
 * with the bias corrections folded into alpha_t and eps_t by the caller (Adam paper,
 * section 2). Built with -ffp-contract=off, so every machine rounds the same way, and
 * -fno-math-errno, so that sqrt vectorises. On x86-64 Linux (glibc) with GCC every loop is
 * compiled for AVX-512, AVX2 and the baseline, and the best the CPU has is picked when the
 * module loads (target_clones).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

#define ADAM_LOOP(T, SUF, SQRT)                                                           \
CLONES static void adam_loop_##SUF(T *restrict p, const T *restrict g, T *restrict m,      \
                                   T *restrict v, Py_ssize_t n, T b1, T b2, T a, T eps)    \
{                                                                                         \
    const T c1 = (T)1 - b1, c2 = (T)1 - b2;                                               \
    for (Py_ssize_t i = 0; i < n; i++) {                                                  \
        const T gi = g[i];                                                                \
        const T mi = b1 * m[i] + c1 * gi;                                                 \
        const T vi = b2 * v[i] + c2 * (gi * gi);                                          \
        m[i] = mi;                                                                        \
        v[i] = vi;                                                                        \
        p[i] = p[i] - a * (mi / (SQRT(vi) + eps));                                        \
    }                                                                                     \
}

ADAM_LOOP(float, f32, sqrtf)
ADAM_LOOP(double, f64, sqrt)

/* ------------------------------------------------------------------ the training step
 * Row-major (m, n) float buffers of one batch; every function checks the byte lengths.
 *
 * bias_relu(z, b, a, m, n):        z += b (each row); a = relu(z)          (BP forward)
 * relu_back_bias(g, z, db, m, n):  g *= (z > 0); db = sum of g's rows      (BP2, BP3)
 * softmax_pre(z, b, a, mx, m, n):  z += b (each row); mx = row max of z; a = z - mx
 *   (then NumPy's own exp of a, in place)
 * softmax_post(z, y, a, d, mx, db, m, n) -> (C, hits):
 *   a /= row sums; C = 1/m sum_rows(log sum + mx - <y, z>); d = (a - y)/m   (BP1);
 *   db = column sums of d (BP3 of the output layer);
 *   hits: the rows where argmax a == argmax y (the first maximum, as np.argmax)
 *   With lab (int64 class labels, one a row) instead of y, y is the one-hot row of lab:
 *   the batch's targets are gathered as m integers instead of m x n floats. A label
 *   outside [0, n) stops the kernel and returns -1 rows done.
 */
#define STEP_KERNELS(T, SUF, LOG)                                                         \
CLONES static void bias_relu_##SUF(T *restrict z, const T *restrict b, T *restrict a,           \
                            Py_ssize_t m, Py_ssize_t n)                                   \
{                                                                                         \
    for (Py_ssize_t i = 0; i < m; i++) {                                                  \
        T *zr = z + i * n, *ar = a + i * n;                                               \
        for (Py_ssize_t j = 0; j < n; j++) {                                              \
            const T t = zr[j] + b[j];                                                     \
            zr[j] = t;                                                                    \
            ar[j] = t < 0 ? (T)0 : t;                                                     \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
CLONES static void relu_back_bias_##SUF(T *restrict g, const T *restrict z, T *restrict db,     \
                                 Py_ssize_t m, Py_ssize_t n)                              \
{                                                                                         \
    for (Py_ssize_t j = 0; j < n; j++)                                                    \
        db[j] = 0;                                                                        \
    for (Py_ssize_t i = 0; i < m; i++) {                                                  \
        T *gr = g + i * n;                                                                \
        const T *zr = z + i * n;                                                          \
        for (Py_ssize_t j = 0; j < n; j++) {                                              \
            const T t = gr[j] * (T)(zr[j] > 0);                                           \
            gr[j] = t;                                                                    \
            db[j] += t;                                                                   \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
CLONES static void softmax_pre_##SUF(T *restrict z, const T *restrict b, T *restrict a,       \
                              T *restrict mx, Py_ssize_t m, Py_ssize_t n)                 \
{                                                                                         \
    for (Py_ssize_t i = 0; i < m; i++) {                                                  \
        T *zr = z + i * n;                                                                \
        T *ar = a + i * n;                                                                \
        for (Py_ssize_t j = 0; j < n; j++)                                                \
            zr[j] += b[j];                                                                \
        T best = zr[0];                                                                   \
        for (Py_ssize_t j = 1; j < n; j++)                                                \
            best = (zr[j] > best || zr[j] != zr[j]) ? zr[j] : best; /* NaN wins */        \
        mx[i] = best;                                                                     \
        for (Py_ssize_t j = 0; j < n; j++)                                                \
            ar[j] = zr[j] - best;                                                         \
    }                                                                                     \
}                                                                                         \
CLONES static double softmax_post_##SUF(const T *restrict z, const T *restrict y,              \
                                 const int64_t *restrict lab, T *restrict a,              \
                                 T *restrict d, const T *restrict mx, T *restrict db,     \
                                 Py_ssize_t m, Py_ssize_t n, Py_ssize_t *correct)         \
{                                                                                         \
    double total = 0.0;                                                                   \
    Py_ssize_t hits = 0;                                                                  \
    const T inv_m = (T)1 / (T)m;                                                          \
    for (Py_ssize_t j = 0; j < n; j++)                                                    \
        db[j] = 0;                                                                        \
    for (Py_ssize_t i = 0; i < m; i++) {                                                  \
        const T *zr = z + i * n;                                                          \
        T *ar = a + i * n, *dr = d + i * n;                                               \
        T s = 0, yz = 0;                                                                  \
        Py_ssize_t pa = 0, py = 0; /* first arg max of a and of y, as np.argmax */       \
        for (Py_ssize_t j = 0; j < n; j++)                                                \
            s += ar[j];                                                                   \
        if (lab) {                                                                        \
            if (lab[i] < 0 || lab[i] >= n) {                                              \
                *correct = -1;                                                            \
                return 0.0;                                                               \
            }                                                                             \
            py = (Py_ssize_t)lab[i];                                                      \
            yz = zr[py];                                                                  \
            for (Py_ssize_t j = 0; j < n; j++) {                                          \
                const T p = ar[j] / s;                                                    \
                ar[j] = p;                                                                \
                dr[j] = (p - (T)(j == py)) * inv_m;                                       \
                db[j] += dr[j];                                                           \
                if (p > ar[pa] || (p != p && ar[pa] == ar[pa])) pa = j;                   \
            }                                                                             \
        } else {                                                                          \
            const T *yr = y + i * n;                                                      \
            for (Py_ssize_t j = 0; j < n; j++)                                            \
                yz += yr[j] * zr[j];                                                      \
            for (Py_ssize_t j = 0; j < n; j++) {                                          \
                const T p = ar[j] / s;                                                    \
                ar[j] = p;                                                                \
                dr[j] = (p - yr[j]) * inv_m;                                              \
                db[j] += dr[j];                                                           \
                if (p > ar[pa] || (p != p && ar[pa] == ar[pa])) pa = j;                   \
                if (yr[j] > yr[py]) py = j;                                               \
            }                                                                             \
        }                                                                                 \
        hits += pa == py;                                                                 \
        total += (double)(LOG(s) + mx[i]) - (double)yz;                                   \
    }                                                                                     \
    *correct = hits;                                                                      \
    return total / (double)m;                                                             \
}

STEP_KERNELS(float, f32, logf)
STEP_KERNELS(double, f64, log)

/* ------------------------------------------------------------------ the Python side
 * Each function takes contiguous buffers ("w*" written, "y*" read), the sizes, and a flag
 * for float64 (else float32); it checks every byte length before it touches memory. */

static void
release_all(Py_buffer *b, int nb)
{
    for (int k = 0; k < nb; k++)
        PyBuffer_Release(&b[k]);
}

/* Buffer k must hold want[k] items (and at least min_items); else release all, raise. */
static int
check_sizes(Py_buffer *b, int nb, const Py_ssize_t *want, Py_ssize_t itemsize,
            Py_ssize_t min_items, const char *name)
{
    for (int k = 0; k < nb; k++) {
        if (want[k] < min_items || b[k].len != want[k] * itemsize) {
            PyErr_Format(PyExc_ValueError, "%s: buffer %d has %zd bytes, expected %zd "
                         "(at least %zd items)", name, k, b[k].len, want[k] * itemsize,
                         min_items);
            release_all(b, nb);
            return -1;
        }
    }
    return 0;
}

static Py_ssize_t
item_size(int f64)
{
    return f64 ? (Py_ssize_t)sizeof(double) : (Py_ssize_t)sizeof(float);
}

static PyObject *
adam(PyObject *self, PyObject *args)
{
    Py_buffer b[4];
    double s[4];
    int f64;
    if (!PyArg_ParseTuple(args, "w*y*w*w*ddddp", &b[0], &b[1], &b[2], &b[3], &s[0], &s[1],
                          &s[2], &s[3], &f64))
        return NULL;
    const Py_ssize_t n = b[0].len / item_size(f64);
    const Py_ssize_t want[4] = {n, n, n, n};
    if (check_sizes(b, 4, want, item_size(f64), 0, "adam") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (f64)
        adam_loop_f64(b[0].buf, b[1].buf, b[2].buf, b[3].buf, n, s[0], s[1], s[2], s[3]);
    else
        adam_loop_f32(b[0].buf, b[1].buf, b[2].buf, b[3].buf, n, (float)s[0], (float)s[1],
                      (float)s[2], (float)s[3]);
    Py_END_ALLOW_THREADS
    release_all(b, 4);
    Py_RETURN_NONE;
}

/* The two kernels of shape (T *rows, const T *rows-or-vector, T *out, m, n): bias_relu and
 * relu_back_bias; ``vec`` is the buffer (1 or 2) that holds one value per column. */
typedef void (*rows3_f32)(float *restrict, const float *restrict, float *restrict,
                          Py_ssize_t, Py_ssize_t);
typedef void (*rows3_f64)(double *restrict, const double *restrict, double *restrict,
                          Py_ssize_t, Py_ssize_t);

static PyObject *
rows3(PyObject *args, const char *name, int vec, rows3_f32 f32, rows3_f64 f64fn)
{
    Py_buffer b[3];
    Py_ssize_t m, n;
    int f64;
    if (!PyArg_ParseTuple(args, "w*y*w*nnp", &b[0], &b[1], &b[2], &m, &n, &f64))
        return NULL;
    Py_ssize_t want[3] = {m * n, m * n, m * n};
    want[vec] = n;
    if (check_sizes(b, 3, want, item_size(f64), 0, name) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (f64)
        f64fn(b[0].buf, b[1].buf, b[2].buf, m, n);
    else
        f32(b[0].buf, b[1].buf, b[2].buf, m, n);
    Py_END_ALLOW_THREADS
    release_all(b, 3);
    Py_RETURN_NONE;
}

static PyObject *
bias_relu(PyObject *self, PyObject *args)
{
    return rows3(args, "bias_relu", 1, bias_relu_f32, bias_relu_f64);
}

static PyObject *
relu_back_bias(PyObject *self, PyObject *args)
{
    return rows3(args, "relu_back_bias", 2, relu_back_bias_f32, relu_back_bias_f64);
}

static PyObject *
softmax_pre(PyObject *self, PyObject *args)
{
    Py_buffer b[4];
    Py_ssize_t m, n;
    int f64;
    if (!PyArg_ParseTuple(args, "w*y*w*w*nnp", &b[0], &b[1], &b[2], &b[3], &m, &n, &f64))
        return NULL;
    const Py_ssize_t want[4] = {m * n, n, m * n, m};
    if (check_sizes(b, 4, want, item_size(f64), 1, "softmax_pre") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (f64)
        softmax_pre_f64(b[0].buf, b[1].buf, b[2].buf, b[3].buf, m, n);
    else
        softmax_pre_f32(b[0].buf, b[1].buf, b[2].buf, b[3].buf, m, n);
    Py_END_ALLOW_THREADS
    release_all(b, 4);
    Py_RETURN_NONE;
}

static PyObject *
softmax_post(PyObject *self, PyObject *args)
{
    Py_buffer b[6];
    Py_ssize_t m, n;
    int f64, labels = 0;
    double value;
    Py_ssize_t correct = 0;
    if (!PyArg_ParseTuple(args, "y*y*w*w*y*w*nnp|p", &b[0], &b[1], &b[2], &b[3], &b[4],
                          &b[5], &m, &n, &f64, &labels))
        return NULL;
    /* y: m x n floats, or with labels m int64, counted in float items (1 or 2 each) */
    const Py_ssize_t per_label = (Py_ssize_t)sizeof(int64_t) / item_size(f64);
    const Py_ssize_t want[6] = {m * n, labels ? m * per_label : m * n, m * n, m * n, m, n};
    if (check_sizes(b, 6, want, item_size(f64), 1, "softmax_post") < 0)
        return NULL;
    const int64_t *lab = labels ? (const int64_t *)b[1].buf : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (f64)
        value = softmax_post_f64(b[0].buf, b[1].buf, lab, b[2].buf, b[3].buf, b[4].buf,
                                 b[5].buf, m, n, &correct);
    else
        value = softmax_post_f32(b[0].buf, b[1].buf, lab, b[2].buf, b[3].buf, b[4].buf,
                                 b[5].buf, m, n, &correct);
    Py_END_ALLOW_THREADS
    release_all(b, 6);
    if (correct < 0) {
        PyErr_SetString(PyExc_ValueError, "softmax_post: a label is outside [0, n)");
        return NULL;
    }
    return Py_BuildValue("dn", value, correct);
}


/* ------------------------------------------------------------------ the two-thread pipe
 * (now N worker threads.) Worker threads for the training step (chainrule/_pipe.py), in
 * place of the BLAS library's own pool; n_workers is chosen at pipe_open. Each worker takes
 * the tasks of its own queue in order: a gather of rows (the next batch, while the main
 * thread runs the small layers; always worker 0's queue), a part of a matrix product
 * (rows [r_i, r_{i+1}) of C for worker i - 1, while the main thread computes rows
 * [0, r_1)), or a part of the Adam step. The BLAS is called on one thread from each side.
 * The rows are split at fixed points that depend only on the sizes and the number of
 * parts (pipe_split), so a run repeats bit for bit. The front ends take the arrays
 * themselves and check them through the buffer protocol (dtype, layout, sizes, overlap);
 * the gather checks each row index as it copies.
 *
 * Claiming: a task is run by whoever claims it first, its worker or the main thread. A
 * worker claims the tasks of its queue in order; the main thread, once it has done its own
 * part and must wait (pipe_drain), first claims and runs every task that no worker has
 * started. So the main thread never waits for a task that has not begun: a worker that is
 * asleep, slow to wake, or off its CPU because the machine is shared costs the step its
 * own part's time, not a wake-up or a time slice. A task runs the same call on the same
 * rows whoever runs it: the bits do not depend on who claimed what. Tasks posted between
 * two drains may run at the same time, even two of one queue (the worker's and the one the
 * main thread took), so none of them may write what another reads or writes (chainrule's
 * pipe.py drains before it posts a gather while an earlier one may run).
 *
 * Waiting: an idle worker spins (pause) for PIPE_SPIN_NS by the clock when its queue is
 * empty, then sleeps on its condition variable; the main thread, waiting for tasks that
 * workers have started, spins for PIPE_WAIT_SPIN_NS, then sleeps on its own condition
 * variable, which a worker signals when it finishes a task while the main thread sleeps.
 * The flags and counters that decide a sleep are seq_cst atomics, and each sleeper checks
 * its condition again under the mutex that the waker takes to signal: no wake-up is lost.
 * So on a machine shared with other work no thread spins for long.
 */
#if !defined(_WIN32)
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define PIPE_GEMM 1
#define PIPE_GATHER 2
#define PIPE_ADAM 3
#define PIPE_QSIZE 8
#define PIPE_MAX_WORKERS 64
#ifndef PIPE_SPIN_NS
#define PIPE_SPIN_NS 200000     /* how long an idle worker spins before it sleeps */
#endif
#ifndef PIPE_WAIT_SPIN_NS
#define PIPE_WAIT_SPIN_NS 100000   /* how long the main thread spins before it sleeps */
#endif
#define PIPE_ADAM_MIN_PART 16384   /* Adam: entries of each part at least */

typedef void (*gemm64_fn)(int, int, int, int64_t, int64_t, int64_t, double, const void *,
                          int64_t, const void *, int64_t, double, void *, int64_t);
typedef void (*sgemm64_fn)(int, int, int, int64_t, int64_t, int64_t, float, const void *,
                           int64_t, const void *, int64_t, float, void *, int64_t);
typedef void (*gemm32_fn)(int, int, int, int32_t, int32_t, int32_t, double, const void *,
                          int32_t, const void *, int32_t, double, void *, int32_t);
typedef void (*sgemm32_fn)(int, int, int, int32_t, int32_t, int32_t, float, const void *,
                           int32_t, const void *, int32_t, float, void *, int32_t);

typedef struct {
    int kind, f64, ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    double alpha, beta, b1, b2, eps;
    const char *a, *b;
    char *c, *g, *mv, *vv;
    const int64_t *idx;
    int64_t rows, src_rows, rowbytes;
} pipe_task;

typedef struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pipe_task q[PIPE_QSIZE];
    /* tasks posted, claimed (by the worker or the main thread, in order) and done; task s
     * sits in q[s % PIPE_QSIZE], and done_at[s % PIPE_QSIZE] == s + 1 once it is done */
    _Atomic int64_t tail, claimed, done;
    _Atomic int64_t done_at[PIPE_QSIZE];
    _Atomic int sleeping;
    char pad[64];                   /* the next worker's counters on another cache line */
} pipe_worker_t;

static struct {
    int open, n;                    /* n workers */
    void *sgemm, *dgemm;
    int ilp64;
    pthread_mutex_t mu;             /* the main thread's sleep */
    pthread_cond_t cv;
    _Atomic int waiting, quit, bad_index;
    _Atomic int64_t taken;          /* tasks of the workers' queues the main thread ran */
    pipe_worker_t w[PIPE_MAX_WORKERS];
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void
pipe_gemm_run(const pipe_task *t)
{
    const int ta = t->ta ? 112 : 111, tb = t->tb ? 112 : 111;   /* CBLAS enums */
    if (t->m <= 0 || t->n <= 0)
        return;
    if (P.ilp64) {
        if (t->f64)
            ((gemm64_fn)P.dgemm)(101, ta, tb, t->m, t->n, t->k, t->alpha, t->a, t->lda, t->b,
                                 t->ldb, t->beta, t->c, t->ldc);
        else
            ((sgemm64_fn)P.sgemm)(101, ta, tb, t->m, t->n, t->k, (float)t->alpha, t->a,
                                  t->lda, t->b, t->ldb, (float)t->beta, t->c, t->ldc);
    } else {
        if (t->f64)
            ((gemm32_fn)P.dgemm)(101, ta, tb, (int32_t)t->m, (int32_t)t->n, (int32_t)t->k,
                                 t->alpha, t->a, (int32_t)t->lda, t->b, (int32_t)t->ldb,
                                 t->beta, t->c, (int32_t)t->ldc);
        else
            ((sgemm32_fn)P.sgemm)(101, ta, tb, (int32_t)t->m, (int32_t)t->n, (int32_t)t->k,
                                  (float)t->alpha, t->a, (int32_t)t->lda, t->b,
                                  (int32_t)t->ldb, (float)t->beta, t->c, (int32_t)t->ldc);
    }
}

static void
pipe_run(const pipe_task *t)
{
    if (t->kind == PIPE_GEMM) {
        pipe_gemm_run(t);
    } else if (t->kind == PIPE_GATHER) {
        for (int64_t i = 0; i < t->rows; i++) {
            const int64_t r = t->idx[i];
            if (r < 0 || r >= t->src_rows) {
                atomic_store(&P.bad_index, 1);
                return;
            }
            memcpy(t->c + i * t->rowbytes, t->a + r * t->rowbytes, (size_t)t->rowbytes);
        }
    } else if (t->kind == PIPE_ADAM) {
        if (t->f64)
            adam_loop_f64((double *)t->c, (const double *)t->g, (double *)t->mv,
                          (double *)t->vv, (Py_ssize_t)t->n, t->b1, t->b2, t->alpha, t->eps);
        else
            adam_loop_f32((float *)t->c, (const float *)t->g, (float *)t->mv,
                          (float *)t->vv, (Py_ssize_t)t->n, (float)t->b1, (float)t->b2,
                          (float)t->alpha, (float)t->eps);
    }
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claim the next task of worker W's queue: its number, or -1 where every posted task is
 * claimed already. */
static int64_t
pipe_claim(pipe_worker_t *W)
{
    int64_t s = atomic_load(&W->claimed);
    while (s < atomic_load(&W->tail))
        if (atomic_compare_exchange_weak(&W->claimed, &s, s + 1))
            return s;
    return -1;
}

/* Run the claimed task s of W's queue and mark it done; wake the main thread where it
 * sleeps waiting. */
static void
pipe_finish(pipe_worker_t *W, int64_t s)
{
    pipe_run(&W->q[s % PIPE_QSIZE]);
    atomic_store(&W->done_at[s % PIPE_QSIZE], s + 1);
    /* seq_cst: either the main thread, going to sleep, sees this task done, or this
     * thread sees it asleep and wakes it (under its mutex, after it checked) */
    atomic_fetch_add(&W->done, 1);
    if (atomic_load(&P.waiting)) {
        pthread_mutex_lock(&P.mu);
        pthread_cond_signal(&P.cv);
        pthread_mutex_unlock(&P.mu);
    }
}

static void *
pipe_worker(void *arg)
{
    pipe_worker_t *W = arg;
    for (;;) {
        int64_t since = 0;
        unsigned spins = 0;
        int64_t s;
        while ((s = pipe_claim(W)) < 0) {
            if (atomic_load(&P.quit))
                return NULL;
            /* a pause lasts 10 to 140 cycles by CPU: spin by the clock, read every 256 */
            int spin = 1;
            if (++spins % 256 == 0) {
                const int64_t t = now_ns();
                if (!since)
                    since = t;
                else if (t - since >= PIPE_SPIN_NS)
                    spin = 0;
            }
            if (spin) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&W->mu);
            atomic_store(&W->sleeping, 1);
            while (atomic_load(&W->claimed) == atomic_load(&W->tail) &&
                   !atomic_load(&P.quit))
                pthread_cond_wait(&W->cv, &W->mu);
            atomic_store(&W->sleeping, 0);
            pthread_mutex_unlock(&W->mu);
            since = 0;
        }
        pipe_finish(W, s);
    }
}

/* Post a task to worker i (main thread only). Its slot is free once the task posted
 * PIPE_QSIZE before it is done; while it is not, the main thread runs the queue's tasks
 * itself (the Python side waits after at most three tasks a worker, so this does not
 * happen in a run). */
static void
pipe_post(int i, const pipe_task *t)
{
    pipe_worker_t *W = &P.w[i];
    const int64_t tl = atomic_load_explicit(&W->tail, memory_order_relaxed);
    if (tl >= PIPE_QSIZE)
        while (atomic_load(&W->done_at[tl % PIPE_QSIZE]) != tl - PIPE_QSIZE + 1) {
            const int64_t s = pipe_claim(W);     /* full: run a task here, or wait */
            if (s >= 0) {
                pipe_finish(W, s);
                atomic_fetch_add_explicit(&P.taken, 1, memory_order_relaxed);
            } else {
                cpu_relax();
            }
        }
    W->q[tl % PIPE_QSIZE] = *t;
    atomic_store(&W->tail, tl + 1);
    if (atomic_load(&W->sleeping)) {
        pthread_mutex_lock(&W->mu);
        pthread_cond_signal(&W->cv);
        pthread_mutex_unlock(&W->mu);
    }
}

static int
pipe_idle(void)
{
    for (int i = 0; i < P.n; i++)
        if (atomic_load(&P.w[i].done) != atomic_load_explicit(&P.w[i].tail,
                                                               memory_order_relaxed))
            return 0;
    return 1;
}

/* Wait until every task posted is done: first run here every task no worker has claimed
 * (in each queue's order), then wait for the ones the workers are running: spin for
 * PIPE_WAIT_SPIN_NS, then sleep until a worker finishing a task finds everything done. */
static void
pipe_drain(void)
{
    for (int i = 0; i < P.n; i++) {
        int64_t s;
        while ((s = pipe_claim(&P.w[i])) >= 0) {
            pipe_finish(&P.w[i], s);
            atomic_fetch_add_explicit(&P.taken, 1, memory_order_relaxed);
        }
    }
    int64_t since = 0;
    unsigned spins = 0;
    while (!pipe_idle()) {
        if (++spins % 64 == 0) {
            const int64_t t = now_ns();
            if (!since) {
                since = t;
            } else if (t - since >= PIPE_WAIT_SPIN_NS) {
                pthread_mutex_lock(&P.mu);
                atomic_store(&P.waiting, 1);
                while (!pipe_idle())
                    pthread_cond_wait(&P.cv, &P.mu);
                atomic_store(&P.waiting, 0);
                pthread_mutex_unlock(&P.mu);
                return;
            }
        }
        cpu_relax();
    }
}

/* The fixed split of m rows into `parts` parts (2 <= parts, parts * min_rows <= m):
 * r[0] = 0 < r[1] < ... < r[parts] = m. Part 0 (the main thread's) is about
 * share * 2 / parts of m, the rest in equal parts; every inner point a multiple of 16
 * (rounded to the nearest), moved where needed so that each part keeps min_rows rows.
 * With two parts: r[1] = m * share rounded to 16, in [min_rows, m - min_rows]. */
static void
pipe_split(int64_t m, int parts, int64_t min_rows, double share, int64_t *r)
{
    const double first = (double)m * (share * 2.0 / parts);
    r[0] = 0;
    r[parts] = m;
    for (int j = 1; j < parts; j++) {
        const double at = j == 1 ? first : first + (m - first) * (j - 1) / (parts - 1);
        int64_t x = (int64_t)(at / 16.0 + 0.5) * 16;
        if (x < r[j - 1] + min_rows)
            x = r[j - 1] + min_rows;
        if (x > m - (parts - j) * min_rows)
            x = m - (parts - j) * min_rows;
        r[j] = x;
    }
}

static void
pipe_reset(pipe_worker_t *W)
{
    atomic_store(&W->tail, 0);
    atomic_store(&W->claimed, 0);
    atomic_store(&W->done, 0);
    for (int j = 0; j < PIPE_QSIZE; j++)
        atomic_store(&W->done_at[j], 0);
    atomic_store(&W->sleeping, 0);
}

/* A child process forked while the pipe is open has no worker threads: mark it closed
 * there, so that a task raises instead of waiting forever. */
static void
pipe_atfork_child(void)
{
    P.open = 0;
    for (int i = 0; i < PIPE_MAX_WORKERS; i++) {
        pipe_reset(&P.w[i]);
        pthread_mutex_init(&P.w[i].mu, NULL);
        pthread_cond_init(&P.w[i].cv, NULL);
    }
    P.n = 0;
    atomic_store(&P.waiting, 0);
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.cv, NULL);
}

static void
pipe_stop(int n)
{
    /* workers [0, n) run: end them (their queues drained) */
    pthread_mutex_lock(&P.mu);
    atomic_store(&P.quit, 1);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&P.w[i].mu);
        pthread_cond_signal(&P.w[i].cv);
        pthread_mutex_unlock(&P.w[i].mu);
    }
    for (int i = 0; i < n; i++)
        pthread_join(P.w[i].thread, NULL);
}

static PyObject *
pipe_open(PyObject *self, PyObject *args)
{
    unsigned long long s, d;
    int ilp64, n = 1;
    if (!PyArg_ParseTuple(args, "KKp|i", &s, &d, &ilp64, &n))
        return NULL;
    if (n < 1 || n > PIPE_MAX_WORKERS) {
        PyErr_Format(PyExc_ValueError, "pipe_open: n_workers must be in [1, %d], got %d",
                     PIPE_MAX_WORKERS, n);
        return NULL;
    }
    if (P.open || !s || !d)
        Py_RETURN_FALSE;
    P.sgemm = (void *)(uintptr_t)s;
    P.dgemm = (void *)(uintptr_t)d;
    P.ilp64 = ilp64;
    atomic_store(&P.quit, 0);
    atomic_store(&P.waiting, 0);
    atomic_store(&P.bad_index, 0);
    atomic_store(&P.taken, 0);
    for (int i = 0; i < n; i++) {
        pipe_worker_t *W = &P.w[i];
        pipe_reset(W);
        P.n = i;
        if (pthread_create(&W->thread, NULL, pipe_worker, W) != 0) {
            pipe_stop(i);
            P.n = 0;
            Py_RETURN_FALSE;
        }
    }
    P.n = n;
    P.open = 1;
    Py_RETURN_TRUE;
}

static PyObject *
pipe_close(PyObject *self, PyObject *args)
{
    if (P.open) {
        Py_BEGIN_ALLOW_THREADS
        pipe_drain();
        pipe_stop(P.n);
        Py_END_ALLOW_THREADS
        P.open = 0;
    }
    Py_RETURN_NONE;
}

/* Wait for every posted task; False when a gather met a row index out of range. */
static PyObject *
pipe_wait(PyObject *self, PyObject *args)
{
    if (P.open) {
        Py_BEGIN_ALLOW_THREADS
        pipe_drain();
        Py_END_ALLOW_THREADS
    }
    if (atomic_exchange(&P.bad_index, 0))
        Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* pipe_workers() -> int: the number of worker threads (0 where the pipe is closed). */
static PyObject *
pipe_workers(PyObject *self, PyObject *args)
{
    return PyLong_FromLong(P.open ? P.n : 0);
}

/* pipe_taken() -> int: how many tasks posted to the workers the main thread has run
 * itself since pipe_open (claimed while it waited: no worker had started them). */
static PyObject *
pipe_taken(PyObject *self, PyObject *args)
{
    return PyLong_FromLongLong(atomic_load(&P.taken));
}

/* pipe_split_points(m, parts, min_rows, share) -> tuple: the split pipe_matmul uses. */
static PyObject *
pipe_split_points(PyObject *self, PyObject *args)
{
    int64_t m, min_rows, r[PIPE_MAX_WORKERS + 2];
    int parts;
    double share;
    if (!PyArg_ParseTuple(args, "LiLd", &m, &parts, &min_rows, &share))
        return NULL;
    if (parts < 1 || parts > PIPE_MAX_WORKERS + 1 || min_rows < 1 || parts * min_rows > m) {
        PyErr_SetString(PyExc_ValueError, "pipe_split_points: need 1 <= parts <= 65 and "
                        "parts * min_rows <= m");
        return NULL;
    }
    if (parts == 1) {
        r[0] = 0;
        r[1] = m;
    } else {
        pipe_split(m, parts, min_rows, share, r);
    }
    PyObject *t = PyTuple_New(parts + 1);
    if (!t)
        return NULL;
    for (int j = 0; j <= parts; j++)
        PyTuple_SET_ITEM(t, j, PyLong_FromLongLong(r[j]));
    return t;
}

/* The array-taking front ends (one C call instead of the Python checks and three ctypes
 * addresses, about 7 us a product). A 2-D float operand is read through the buffer
 * protocol with its strides: rows contiguous ("N", ld = row stride) or columns
 * contiguous ("T", a transposed view). */
typedef struct {
    Py_buffer v;
    int ok, trans, f64;
    int64_t rows, cols, ld;
    const char *lo, *hi;                 /* the bytes it spans */
} operand;

static void
operand_get(PyObject *o, operand *x, int writable)
{
    memset(x, 0, sizeof(*x));
    if (PyObject_GetBuffer(o, &x->v, PyBUF_STRIDES | PyBUF_FORMAT |
                                             (writable ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        return;
    }
    x->ok = 1;
    const char *f = x->v.format ? x->v.format : "B";
    const char fc = f[0] == '<' || f[0] == '=' || f[0] == '@' ? f[1] : f[0];
    const Py_ssize_t isz = x->v.itemsize;
    if (x->v.ndim != 2 || !((fc == 'f' && isz == 4) || (fc == 'd' && isz == 8))) {
        x->ok = 0;
        return;
    }
    x->f64 = fc == 'd';
    x->rows = x->v.shape[0];
    x->cols = x->v.shape[1];
    const Py_ssize_t s0 = x->v.strides[0], s1 = x->v.strides[1];
    if (x->rows <= 0 || x->cols <= 0) {
        x->ok = 0;
    } else if (s1 == isz && s0 % isz == 0 && s0 / isz >= x->cols) {
        x->trans = 0;
        x->ld = s0 / isz;
    } else if (s0 == isz && s1 % isz == 0 && s1 / isz >= x->rows) {
        x->trans = 1;
        x->ld = s1 / isz;
    } else {
        x->ok = 0;
    }
    if (x->ok) {
        x->lo = (const char *)x->v.buf;
        x->hi = x->lo + (x->rows - 1) * s0 + (x->cols - 1) * s1 + isz;
    }
}

static void
operand_release(operand *x)
{
    if (x->v.obj)
        PyBuffer_Release(&x->v);
}

static int
spans_meet(const operand *a, const operand *b)
{
    return a->lo < b->hi && b->lo < a->hi;
}

/* pipe_matmul(a, b, out, alpha, beta, min_size, min_rows, share) -> bool:
 * out = alpha a @ b + beta out over the main thread and the workers, where it applies:
 * min(n_workers + 1, m // min_rows) parts of the rows of out at the points of pipe_split,
 * part 0 here and part i + 1 on worker i. False, nothing done, where it does not apply. */
static PyObject *
pipe_matmul(PyObject *self, PyObject *args)
{
    PyObject *ao, *bo, *co;
    double alpha, beta, share;
    int64_t min_size, min_rows;
    if (!PyArg_ParseTuple(args, "OOOddLLd", &ao, &bo, &co, &alpha, &beta, &min_size,
                          &min_rows, &share))
        return NULL;
    if (!P.open) {
        PyErr_SetString(PyExc_RuntimeError, "pipe_matmul: the pipe is not open");
        return NULL;
    }
    if (min_rows < 1)
        min_rows = 1;
    operand a, b, c;
    operand_get(ao, &a, 0);
    operand_get(bo, &b, 0);
    operand_get(co, &c, 1);
    const int64_t m = c.rows, n = c.cols, k = a.cols;
    const int fits = a.ok && b.ok && c.ok && !c.trans && a.f64 == c.f64 && b.f64 == c.f64 &&
                     a.rows == m && b.rows == k && b.cols == n && m * n * k >= min_size &&
                     m >= 2 * min_rows && !spans_meet(&c, &a) && !spans_meet(&c, &b);
    if (!fits) {
        operand_release(&a);
        operand_release(&b);
        operand_release(&c);
        Py_RETURN_FALSE;
    }
    const int parts = m / min_rows < P.n + 1 ? (int)(m / min_rows) : P.n + 1;
    int64_t r[PIPE_MAX_WORKERS + 2];
    pipe_split(m, parts, min_rows, share, r);
    const int64_t isz = c.f64 ? 8 : 4;
    pipe_task mine = {.kind = PIPE_GEMM, .f64 = c.f64, .ta = a.trans, .tb = b.trans,
                      .m = r[1], .n = n, .k = k, .lda = a.ld, .ldb = b.ld, .ldc = c.ld,
                      .alpha = alpha, .beta = beta, .a = a.lo, .b = b.lo,
                      .c = (char *)c.v.buf};
    Py_BEGIN_ALLOW_THREADS
    for (int j = 1; j < parts; j++) {
        pipe_task t = mine;
        t.m = r[j + 1] - r[j];
        t.a = a.lo + (a.trans ? r[j] : r[j] * a.ld) * isz;
        t.c = mine.c + r[j] * c.ld * isz;
        pipe_post(j - 1, &t);
    }
    pipe_gemm_run(&mine);
    pipe_drain();
    Py_END_ALLOW_THREADS
    operand_release(&a);
    operand_release(&b);
    operand_release(&c);
    Py_RETURN_TRUE;
}

/* pipe_gather_arrays(X, idx, out): post out[i] = X[idx[i]] for C-contiguous rows of one
 * float dtype and a contiguous int64 idx (ValueError otherwise). */
static PyObject *
pipe_gather_arrays(PyObject *self, PyObject *args)
{
    PyObject *xo, *io, *oo;
    if (!PyArg_ParseTuple(args, "OOO", &xo, &io, &oo))
        return NULL;
    if (!P.open) {
        PyErr_SetString(PyExc_RuntimeError, "pipe_gather: the pipe is not open");
        return NULL;
    }
    operand x, o;
    Py_buffer ib;
    operand_get(xo, &x, 0);
    operand_get(oo, &o, 1);
    int iok = PyObject_GetBuffer(io, &ib, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0;
    if (!iok)
        PyErr_Clear();
    const char *fi = iok && ib.format ? ib.format : "";
    const char ic = fi[0] == '<' || fi[0] == '=' || fi[0] == '@' ? fi[1] : fi[0];
    const int fits = x.ok && o.ok && iok && !x.trans && !o.trans && x.f64 == o.f64 &&
                     x.cols == o.cols && x.ld == x.cols && o.ld == o.cols && ib.ndim == 1 &&
                     ib.itemsize == 8 && (ic == 'l' || ic == 'q') &&
                     ib.shape[0] <= o.rows && !spans_meet(&x, &o);
    pipe_task t = {.kind = PIPE_GATHER};
    if (fits) {
        t.a = x.lo;
        t.src_rows = x.rows;
        t.rowbytes = x.cols * (x.f64 ? 8 : 4);
        t.idx = (const int64_t *)ib.buf;
        t.rows = ib.shape[0];
        t.c = (char *)o.v.buf;
    }
    operand_release(&x);
    operand_release(&o);
    if (iok)
        PyBuffer_Release(&ib);
    if (!fits) {
        PyErr_SetString(PyExc_ValueError, "Pipe.prefetch: X and out must be C-contiguous "
                        "rows of one float dtype, not overlapping, and idx a contiguous "
                        "int64 vector no longer than out");
        return NULL;
    }
    pipe_post(0, &t);
    Py_RETURN_NONE;
}

/* pipe_adam(theta, grad, m, v, beta1, beta2, alpha_t, eps_t, f64): adam() over the main
 * thread and the workers: min(n_workers + 1, n // PIPE_ADAM_MIN_PART) equal parts (at
 * multiples of 16 entries), part 0 here. Element-wise: any split gives the same bits. */
static PyObject *
pipe_adam(PyObject *self, PyObject *args)
{
    Py_buffer b[4];
    pipe_task t = {.kind = PIPE_ADAM};
    if (!PyArg_ParseTuple(args, "w*y*w*w*ddddp", &b[0], &b[1], &b[2], &b[3], &t.b1, &t.b2,
                          &t.alpha, &t.eps, &t.f64))
        return NULL;
    const int64_t isz = t.f64 ? 8 : 4;
    const Py_ssize_t n = b[0].len / isz;
    const Py_ssize_t want[4] = {n, n, n, n};
    if (check_sizes(b, 4, want, isz, 0, "pipe_adam") < 0)
        return NULL;
    if (!P.open) {
        release_all(b, 4);
        PyErr_SetString(PyExc_RuntimeError, "pipe_adam: the pipe is not open");
        return NULL;
    }
    int parts = n / PIPE_ADAM_MIN_PART < P.n + 1 ? (int)(n / PIPE_ADAM_MIN_PART) : P.n + 1;
    int64_t r[PIPE_MAX_WORKERS + 2] = {0, n};
    if (parts < 1)
        parts = 1;
    if (parts > 1)
        pipe_split(n, parts, 16, 0.5, r);
    pipe_task part[PIPE_MAX_WORKERS + 1];
    for (int j = 0; j < parts; j++) {
        part[j] = t;
        part[j].c = (char *)b[0].buf + r[j] * isz;
        part[j].g = (char *)b[1].buf + r[j] * isz;
        part[j].mv = (char *)b[2].buf + r[j] * isz;
        part[j].vv = (char *)b[3].buf + r[j] * isz;
        part[j].n = r[j + 1] - r[j];
    }
    Py_BEGIN_ALLOW_THREADS
    for (int j = 1; j < parts; j++)
        pipe_post(j - 1, &part[j]);
    pipe_run(&part[0]);
    pipe_drain();
    Py_END_ALLOW_THREADS
    release_all(b, 4);
    Py_RETURN_NONE;
}
#endif /* !_WIN32 */

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(theta, grad, m, v, beta1, beta2, alpha_t, eps_t, f64): one fused Adam step in "
     "place on contiguous float32 (or, with f64, float64) buffers."},
    {"bias_relu", bias_relu, METH_VARARGS,
     "bias_relu(z, b, a, m, n, f64): z += b row by row, a = relu(z)."},
    {"relu_back_bias", relu_back_bias, METH_VARARGS,
     "relu_back_bias(g, z, db, m, n, f64): g *= (z > 0), db = column sums of g."},
    {"softmax_pre", softmax_pre, METH_VARARGS,
     "softmax_pre(z, b, a, mx, m, n, f64): z += b row by row, mx = row max of z, "
     "a = z - mx."},
    {"softmax_post", softmax_post, METH_VARARGS,
     "softmax_post(z, y, e, d, mx, db, m, n, f64, labels=False) -> (C, hits): e holds "
     "exp(z - mx); normalises it to the softmax, writes d = (softmax - y)/m and db = "
     "column sums of d, returns the mean cross-entropy and the number of rows whose argmax "
     "matches y's. With labels, y is m int64 class labels (the one-hot rows implied)."},
#if !defined(_WIN32)
    {"pipe_open", pipe_open, METH_VARARGS,
     "pipe_open(sgemm_addr, dgemm_addr, ilp64, n_workers=1) -> bool: start the worker "
     "threads; False if they run already (or one could not start)."},
    {"pipe_close", pipe_close, METH_NOARGS, "pipe_close(): finish the tasks, stop the workers."},
    {"pipe_wait", pipe_wait, METH_NOARGS,
     "pipe_wait() -> bool: wait for the posted tasks; False if a gather met a bad row index."},
    {"pipe_workers", pipe_workers, METH_NOARGS,
     "pipe_workers() -> int: the number of worker threads, 0 where the pipe is closed."},
    {"pipe_taken", pipe_taken, METH_NOARGS,
     "pipe_taken() -> int: the workers' tasks the main thread ran itself (no worker had "
     "started them when it waited) since pipe_open."},
    {"pipe_split_points", pipe_split_points, METH_VARARGS,
     "pipe_split_points(m, parts, min_rows, share) -> tuple: the row boundaries "
     "(0, r1, ..., m) at which pipe_matmul splits m rows into parts parts."},
    {"pipe_matmul", pipe_matmul, METH_VARARGS,
     "pipe_matmul(a, b, out, alpha, beta, min_size, min_rows, share) -> bool: out = alpha "
     "a @ b + beta out over the main thread and the workers for 2-D float arrays (rows or "
     "columns contiguous, out rows contiguous), min(n_workers + 1, m // min_rows) parts "
     "of the rows at fixed points, part 0 here; False where it does not apply."},
    {"pipe_gather_arrays", pipe_gather_arrays, METH_VARARGS,
     "pipe_gather_arrays(X, idx, out): post out[i] = X[idx[i]] (C-contiguous rows, int64 "
     "idx) to worker 0."},
    {"pipe_adam", pipe_adam, METH_VARARGS,
     "pipe_adam(theta, grad, m, v, beta1, beta2, alpha_t, eps_t, f64): adam() split over "
     "the main thread and the workers."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "chainrule.engine._kernels",
    "Fused optimiser kernels (optional; chainrule falls back to NumPy without them).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
#if !defined(_WIN32)
    pthread_atfork(NULL, NULL, pipe_atfork_child);
#endif
    return PyModule_Create(&module);
}
