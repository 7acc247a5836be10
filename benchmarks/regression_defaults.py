"""The CLI's regression defaults against scikit-learn's LinearRegression (issue 16).

Each data set is written to CSV five times, its rows shuffled with seeds 0..4, and
``chainrule train --dataset FILE --target TARGET`` runs with no other flag. The linear
baseline is fitted on the same training and validation rows (the CLI's own split, seed 0)
and scored on the same test rows. Prints the mean test RMSE of each and their ratio.

    python benchmarks/regression_defaults.py        # about a minute on one core
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import LinearRegression

from chainrule.data import split


def datasets() -> dict[str, tuple[pd.DataFrame, str]]:
    diabetes = load_diabetes(as_frame=True).frame
    X, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    friedman = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y)
    return {"diabetes": (diabetes, "target"), "friedman1": (friedman, "y")}


def run(frame: pd.DataFrame, target: str, folder: Path, tag: str) -> tuple[float, float]:
    path = folder / f"{tag}.csv"
    frame.to_csv(path, index=False)
    out = subprocess.run([sys.executable, "-m", "chainrule", "train", "--dataset", str(path),
                          "--target", target, "--quiet", "--out", str(folder / f"{tag}.st")],
                         capture_output=True, text=True, check=True).stdout
    ours = float(re.search(r"test RMSE ([0-9.e+-]+)", out).group(1))
    X, y = frame.drop(columns=[target]).to_numpy(), frame[target].to_numpy()
    tr, va, te = split(len(y), (0.7, 0.1, 0.2), seed=0)
    fit_rows = np.concatenate([tr, va])
    lin = LinearRegression().fit(X[fit_rows], y[fit_rows]).predict(X[te])
    return ours, float(np.sqrt(np.mean((lin - y[te]) ** 2)))


def main() -> dict[str, tuple[float, float]]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (frame, target) in datasets().items():
            scores = [run(frame.sample(frac=1.0, random_state=s).reset_index(drop=True),
                          target, Path(tmp), f"{name}{s}") for s in range(5)]
            ours, lin = np.mean(scores, axis=0)
            results[name] = (float(ours), float(lin))
            print(f"{name:10s} chainrule defaults RMSE {ours:.4g}   LinearRegression "
                  f"{lin:.4g}   ratio {ours / lin:.3f}")
    return results


if __name__ == "__main__":
    main()
