"""Every Python block and every `chainrule` command line of README.md runs, as written
(issue 16). Blocks whose fence says ``notest`` (set-up lines, downloads) are skipped. The
files the examples name (data.csv, new_rows.csv, row.csv, prices.csv) are made here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(kind: str) -> list[str]:
    found = re.findall(r"^```(\w+)([^\n]*)\n(.*?)^```", README.read_text(), re.M | re.S)
    return [body for lang, tags, body in found if lang == kind and "notest" not in tags.split()]


def commands() -> list[list[str]]:
    lines = []
    for body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            if line.startswith("chainrule "):
                lines.append(shlex.split(line, comments=True)[1:])
    return lines


def test_the_readme_has_what_the_test_runs():
    assert len(commands()) >= 15 and len(blocks("python")) >= 2
    text = README.read_text()
    assert "../shared" not in text            # a path that exists only in this repository


@pytest.fixture
def example_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(5, 1, size=(150, 4))
    species = np.array(["setosa", "versicolor", "virginica"])[(X[:, 0] > 5).astype(int) +
                                                               (X[:, 1] > 5.5)]
    head = "sepal_length,sepal_width,petal_length,petal_width"
    rows = [",".join(f"{v:.2f}" for v in r) for r in X]
    (tmp_path / "data.csv").write_text(f"{head},species\n" + "".join(
        f"{r},{s}\n" for r, s in zip(rows, species)))
    (tmp_path / "new_rows.csv").write_text(f"{head}\n" + "\n".join(rows[:5]) + "\n")
    (tmp_path / "row.csv").write_text(f"{head}\n{rows[0]}\n")
    F = rng.normal(size=(300, 3))
    price = 200 + 50 * F[:, 0] - 30 * F[:, 1] ** 2 + rng.normal(0, 5, 300)
    (tmp_path / "prices.csv").write_text("rooms,age,distance,price\n" + "".join(
        f"{a:.3f},{b:.3f},{c:.3f},{p:.2f}\n" for (a, b, c), p in zip(F, price)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_command_line_of_the_readme_runs(example_files, capsys):
    pytest.importorskip("sympy")
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnx")
    for argv in commands():
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, out[-500:], err[-500:])
        if argv[:3] == ["train", "--dataset", "prices.csv"]:
            assert "worse than predicting" not in out
    for f in ("model.safetensors", "predictions.csv", "model.onnx", "pics/training_curves.png",
              "curves.png", "surface.png", "weights.png"):
        assert (example_files / f).stat().st_size > 0, f


def test_every_python_block_of_the_readme_runs(example_files):
    pytest.importorskip("sklearn")
    pytest.importorskip("onnx")
    pytest.importorskip("matplotlib")
    code = "\n".join(blocks("python"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=example_files)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (example_files / "model.onnx").exists() and (example_files / "curves.png").exists()
