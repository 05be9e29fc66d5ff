"""Seed 001's chain-rule derivatives, checked by central differences (and SymPy if installed).

    y = sin(x^2):     dy/dx = cos(x^2) * 2x
    y = e^sqrt(x):    dy/dx = e^sqrt(x) / (2 sqrt(x))
    z = x^2 + sin(xy), x = t^2, y = e^t:
                      dz/dt = dz/dx dx/dt + dz/dy dy/dt
                            = (2x + y cos(xy)) * 2t + x cos(xy) * e^t

The seed writes the multivariable case as ``2x (2t) + [cos(xy) y (2x) + cos(xy) x e^t]``:
its middle term has dx/dt = 2x where the chain rule needs 2t, and main() shows that
this printed form disagrees with the finite difference while the corrected one agrees.
Plain NumPy (float64); SymPy, when present, differentiates the same expressions exactly.
"""
import numpy as np


def central_difference(f, x, h=1e-6):
    """(f(x + h) - f(x - h)) / 2h: error O(h^2)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def z_of_t(t):
    x, y = t**2, np.exp(t)
    return x**2 + np.sin(x * y)


def dz_dt(t):
    x, y = t**2, np.exp(t)
    return (2 * x + y * np.cos(x * y)) * 2 * t + x * np.cos(x * y) * np.exp(t)


def dz_dt_as_printed(t):
    x, y = t**2, np.exp(t)
    return 2 * x * (2 * t) + (np.cos(x * y) * y * (2 * x) + np.cos(x * y) * x * np.exp(t))


CASES = {  # name: (f, chain-rule derivative, point)
    "sin(x^2)": (lambda x: np.sin(x**2), lambda x: np.cos(x**2) * 2 * x, 3.0),
    "e^sqrt(x)": (lambda x: np.exp(np.sqrt(x)), lambda x: np.exp(np.sqrt(x)) / (2 * np.sqrt(x)), 4.0),
    "z(t)": (z_of_t, dz_dt, 0.7),
}


def sympy_derivatives():
    """Exact derivatives at each case's point, or None without SymPy."""
    try:
        import sympy as sp
    except ImportError:
        return None
    x, t = sp.symbols("x t")
    exprs = {"sin(x^2)": (sp.sin(x**2), x), "e^sqrt(x)": (sp.exp(sp.sqrt(x)), x),
             "z(t)": ((t**2) ** 2 + sp.sin(t**2 * sp.exp(t)), t)}
    return {name: float(sp.diff(e, v).subs(v, CASES[name][2])) for name, (e, v) in exprs.items()}


def main(verbose=True):
    exact = sympy_derivatives()
    results = {}
    for name, (f, df, at) in CASES.items():
        results[name] = {"at": at, "chain_rule": float(df(at)),
                         "finite_difference": float(central_difference(f, at)),
                         "sympy": None if exact is None else exact[name]}
    at = CASES["z(t)"][2]
    results["z(t) as printed in the seed"] = {"at": at, "chain_rule": float(dz_dt_as_printed(at)),
                                              "finite_difference": results["z(t)"]["finite_difference"],
                                              "sympy": results["z(t)"]["sympy"]}
    if verbose:
        print(f"{'derivative':<28} {'at':>4} {'chain rule':>14} {'finite diff':>14} {'sympy':>14}")
        for name, r in results.items():
            sym = "not installed" if r["sympy"] is None else f"{r['sympy']:.8f}"
            print(f"{name:<28} {r['at']:>4} {r['chain_rule']:>14.8f} {r['finite_difference']:>14.8f} {sym:>14}")
        print("the seed's printed dz/dt uses dx/dt = 2x in its middle term; with 2t it matches")
    return results


if __name__ == "__main__":
    main()
