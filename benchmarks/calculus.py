"""Calculus benchmarks, side by side in one process:

1. the full 200x200 Jacobian of tanh(W x + b);
2. the gradient of sum(sin(x) * x**2) over 10^5 inputs;

for chainrule, HIPS autograd, PyTorch (torch.func.jacrev / autograd, if installed), JAX
(jax.jit(jacrev), if installed) and the derivative written by hand in NumPy.

    python benchmarks/calculus.py
"""

from __future__ import annotations

import sys

import numpy as onp
from _common import interleaved, table, write

import chainrule as cr
import chainrule.numpy as cnp


def main() -> None:
    r = onp.random.default_rng(0)
    n = 200
    W = r.normal(size=(n, n)) / onp.sqrt(n)
    b = r.normal(size=n)
    x = r.normal(size=n)
    big = r.normal(size=100_000)

    notes: list[str] = []

    # ---- chainrule
    jf = cr.jacobian(lambda v: cnp.tanh(W @ v + b))
    gf = cr.grad(lambda v: cnp.sum(cnp.sin(v) * v ** 2))
    J_ref = jf(x)
    g_ref = gf(big)
    jac_fns = {"chainrule": lambda: jf(x)}
    grad_fns = {"chainrule": lambda: gf(big)}

    # ---- hand-written NumPy
    def hand_jac(v):
        t = onp.tanh(W @ v + b)
        return (1 - t * t)[:, None] * W

    def hand_grad(v):
        return onp.cos(v) * v * v + 2 * v * onp.sin(v)

    assert onp.allclose(hand_jac(x), J_ref) and onp.allclose(hand_grad(big), g_ref)
    jac_fns["numpy by hand"] = lambda: hand_jac(x)
    grad_fns["numpy by hand"] = lambda: hand_grad(big)

    # ---- HIPS autograd
    try:
        import autograd
        import autograd.numpy as anp

        aj = autograd.jacobian(lambda v: anp.tanh(anp.dot(W, v) + b))
        ag = autograd.grad(lambda v: anp.sum(anp.sin(v) * v ** 2))
        assert onp.allclose(aj(x), J_ref) and onp.allclose(ag(big), g_ref)
        jac_fns["HIPS autograd"] = lambda: aj(x)
        grad_fns["HIPS autograd"] = lambda: ag(big)
    except ImportError:
        notes.append("HIPS autograd not installed: skipped")

    # ---- PyTorch
    try:
        import torch

        torch.set_num_threads(2)
        Wt, bt, xt = (torch.tensor(a) for a in (W, b, x))
        bigt = torch.tensor(big)
        tj = torch.func.jacrev(lambda v: torch.tanh(Wt @ v + bt))
        assert onp.allclose(tj(xt).numpy(), J_ref)
        jac_fns["torch.func.jacrev"] = lambda: tj(xt)

        def tgrad():
            v = bigt.clone().requires_grad_(True)
            (torch.sin(v) * v ** 2).sum().backward()
            return v.grad

        assert onp.allclose(tgrad().numpy(), g_ref)
        grad_fns["torch autograd"] = tgrad
        tg = torch.func.grad(lambda v: (torch.sin(v) * v ** 2).sum())
        grad_fns["torch.func.grad"] = lambda: tg(bigt)
    except ImportError:
        notes.append("PyTorch not installed: skipped (pip install torch==2.13.0)")

    # ---- JAX
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        jj = jax.jit(jax.jacrev(lambda v: jnp.tanh(jnp.asarray(W) @ v + jnp.asarray(b))))
        xj = jnp.asarray(x)
        assert onp.allclose(onp.asarray(jj(xj)), J_ref)
        jac_fns["jax.jit(jacrev)"] = lambda: jj(xj).block_until_ready()
        jg = jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(v) * v ** 2)))
        bj = jnp.asarray(big)
        grad_fns["jax.jit(grad)"] = lambda: jg(bj).block_until_ready()
    except ImportError:
        notes.append("JAX not installed: skipped")

    jac_times = interleaved(jac_fns)
    grad_times = interleaved(grad_fns)
    rows = []
    base_j, base_g = jac_times["chainrule"], grad_times["chainrule"]
    for name, t in jac_times.items():
        rows.append({"task": "jacobian 200x200 tanh(Wx+b)", "library": name,
                     "ms": t * 1e3, "time / chainrule": t / base_j})
    for name, t in grad_times.items():
        rows.append({"task": "grad sum(sin(x) x^2), 1e5", "library": name,
                     "ms": t * 1e3, "time / chainrule": t / base_g})
    print(table(rows, ["task", "library", "ms", "time / chainrule"]))
    for n_ in notes:
        print("note:", n_)
    print(f"chainrule gradient / hand-written NumPy: "
          f"{grad_times['chainrule'] / grad_times['numpy by hand']:.3f}x")
    path = write("calculus", rows, {"notes": notes})
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
