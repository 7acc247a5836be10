/* Fused optimiser kernels: one pass over Theta where NumPy needs seven.
 *
 * Optional: chainrule works without this module (chainrule/optim/optimizers.py falls back
 * to NumPy and BLAS); setup.py builds it where a C compiler is available. It uses only the
 * buffer protocol, no NumPy C API, and releases the GIL while it runs.
 *
 * adam_f32 / adam_f64(theta, grad, m, v, beta1, beta2, alpha_t, eps_t):
 *     m     <- beta1 m + (1 - beta1) g
 *     v     <- beta2 v + (1 - beta2) g^2
 *     theta <- theta - alpha_t m / (sqrt(v) + eps_t)
 * with the bias corrections folded into alpha_t and eps_t by the caller (Adam paper,
 * section 2). Built with -ffp-contract=off, so every machine rounds the same way, and
 * -fno-math-errno, so that sqrt vectorises. On
 * x86-64 with GCC the loop is compiled for AVX-512, AVX2 and the baseline, and the best
 * the CPU has is picked when the module loads (target_clones).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

CLONES static void
adam_loop_f32(float *restrict p, const float *restrict g, float *restrict m,
              float *restrict v, Py_ssize_t n, float b1, float b2, float a, float eps)
{
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (Py_ssize_t i = 0; i < n; i++) {
        const float gi = g[i];
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - a * (mi / (sqrtf(vi) + eps));
    }
}

CLONES static void
adam_loop_f64(double *restrict p, const double *restrict g, double *restrict m,
              double *restrict v, Py_ssize_t n, double b1, double b2, double a, double eps)
{
    const double c1 = 1.0 - b1, c2 = 1.0 - b2;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double gi = g[i];
        const double mi = b1 * m[i] + c1 * gi;
        const double vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - a * (mi / (sqrt(vi) + eps));
    }
}

/* Four contiguous buffers of the same length and item size; the first, third and
 * fourth writable. Returns 0 and fills n, or -1 with an exception set. */
static int
get_buffers(PyObject *args, Py_buffer b[4], double s[4], Py_ssize_t itemsize,
            Py_ssize_t *n)
{
    if (!PyArg_ParseTuple(args, "w*y*w*w*dddd", &b[0], &b[1], &b[2], &b[3],
                          &s[0], &s[1], &s[2], &s[3]))
        return -1;
    for (int k = 0; k < 4; k++) {
        if (b[k].len != b[0].len || b[k].len % itemsize != 0) {
            for (int j = 0; j < 4; j++)
                PyBuffer_Release(&b[j]);
            PyErr_SetString(PyExc_ValueError,
                            "adam: theta, grad, m and v must have the same length and dtype");
            return -1;
        }
    }
    *n = b[0].len / itemsize;
    return 0;
}

static PyObject *
adam_f32(PyObject *self, PyObject *args)
{
    Py_buffer b[4];
    double s[4];
    Py_ssize_t n;
    if (get_buffers(args, b, s, sizeof(float), &n) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    adam_loop_f32((float *)b[0].buf, (const float *)b[1].buf, (float *)b[2].buf,
                  (float *)b[3].buf, n, (float)s[0], (float)s[1], (float)s[2], (float)s[3]);
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&b[k]);
    Py_RETURN_NONE;
}

static PyObject *
adam_f64(PyObject *self, PyObject *args)
{
    Py_buffer b[4];
    double s[4];
    Py_ssize_t n;
    if (get_buffers(args, b, s, sizeof(double), &n) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    adam_loop_f64((double *)b[0].buf, (const double *)b[1].buf, (double *)b[2].buf,
                  (double *)b[3].buf, n, s[0], s[1], s[2], s[3]);
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&b[k]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam_f32", adam_f32, METH_VARARGS,
     "adam_f32(theta, grad, m, v, beta1, beta2, alpha_t, eps_t): one fused Adam step "
     "in place on contiguous float32 buffers."},
    {"adam_f64", adam_f64, METH_VARARGS,
     "adam_f64(theta, grad, m, v, beta1, beta2, alpha_t, eps_t): the same for float64."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "chainrule._kernels",
    "Fused optimiser kernels (optional; chainrule falls back to NumPy without them).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
