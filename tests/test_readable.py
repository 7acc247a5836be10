"""explain, grad and jacobian output a person can read (issue 16, point 5 and 6)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from chainrule.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iris32(tmp_path_factory):
    """A model with a 32-row W^1 on standardised inputs and named classes."""
    folder = tmp_path_factory.mktemp("explain")
    rng = __import__("numpy").random.default_rng(0)
    X = rng.normal(5, 2, size=(60, 4))
    names = ["setosa", "versicolor", "virginica"]
    with open(folder / "flowers.csv", "w") as f:
        f.write("a,b,c,d,species\n")
        for i, row in enumerate(X):
            f.write(",".join(f"{v:.3f}" for v in row) + f",{names[i % 3]}\n")
    model = folder / "m.safetensors"
    assert main(["train", "--dataset", str(folder / "flowers.csv"), "--layers", "32",
                 "--epochs", "2", "--quiet", "--out", str(model)]) == 0
    return model


def _structure_problems(tex: str) -> list[str]:
    """A small LaTeX parser for where no engine is installed: balanced braces, display
    math opened and closed, environments closed in order, no bare text-mode specials."""
    problems, stack = [], []
    for m in re.finditer(r"\\begin\{(\w+)\}|\\end\{(\w+)\}|\\\[|\\\]|(?<!\\)[{}]", tex):
        tok = m.group(0)
        if tok in ("{", r"\[") or tok.startswith(r"\begin"):
            stack.append(m.group(1) or tok)
        else:
            want = m.group(2) or {"}": "{", r"\]": r"\["}[tok]
            if not stack or stack.pop() != want:
                problems.append(f"unbalanced {tok} at {m.start()}")
    problems += [f"unclosed {s}" for s in stack]
    for line in tex.splitlines():   # text lines (titles, notes) escape _ ^ # & %
        if line.startswith((r"\subsection", r"\emph")) and re.search(r"(?<!\\)[_^#&%]", line):
            problems.append(f"a text-mode special in {line!r}")
    return problems


def _compiles(tex: str, tmp_path) -> None:
    doc = "\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n" + tex + \
        "\n\\end{document}\n"
    assert _structure_problems(doc) == []
    engine = shutil.which("pdflatex")
    if engine is None:
        return      # the parser above is the check where no LaTeX engine is installed
    (tmp_path / "x.tex").write_text(doc)
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "x.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_latex_marks_what_it_leaves_out_and_compiles(capsys, iris32, tmp_path):
    code, tex, _ = run(capsys, "explain", "--model", str(iris32), "--input", "5,3,1,0.2",
                       "--format", "latex")
    assert code == 0
    w1 = re.search(r"\\\[ W\^1 = (.*?) \\\]", tex).group(1)
    assert w1.count(r"\\") == 8 and r"\vdots" in w1 and r"(32 \times 4," in w1
    assert r"\text{largest relative difference}" in tex
    assert r"\operatorname{relu}(z^1)" in tex and "cross\\_entropy" in tex
    assert not re.search(r"\de-?\d", tex)                 # 1.2 \times 10^{-5}, never 1.2e-05
    from chainrule.explain import _latex_number
    assert _latex_number(1.2514e-05) == r"1.251 \times 10^{-5}" and _latex_number(0.5) == "0.5"
    _compiles(tex, tmp_path)
    code, tex, _ = run(capsys, "explain", "--format", "latex")
    _compiles(tex, tmp_path)


def test_explain_names_the_prediction_and_the_scaling(capsys, iris32):
    code, out, _ = run(capsys, "explain", "--model", str(iris32), "--input", "5,3,1,0.2")
    assert code == 0
    assert re.search(r"the network predicts class (setosa|versicolor|virginica)", out)
    assert "standardised as in training" in out and "x (as given) =" in out
    assert "a^0 = (x - mean) / scale =" in out
    code, out, _ = run(capsys, "explain", "--model", str(iris32), "--input", "5,3,1,0.2",
                       "--label", "virginica")
    assert "the target is class virginica" in out


def test_grad_rows_are_labelled(capsys):
    code, out, _ = run(capsys, "grad", "tanh(w*x+b)")
    assert code == 0 and out.splitlines()[0] == "one row per variable: d/dw, d/dx, d/db"
    code, out, _ = run(capsys, "jacobian", "x*y, x+y", "--wrt", "y,x")
    assert "one column per variable: d/dy, d/dx" in out


@pytest.mark.parametrize("argv,words", [
    (["grad", "x**2", "--wrt", "q"], "--wrt q: not in the expression (its variables: x)"),
    (["grad", "2x"], "write products with *, as in 2*x"),
    (["jacobian", "3 y + 1, y"], "as in 3*y"),
])
def test_grad_errors_say_how_to_fix(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    assert code == 1 and words in err


def test_grad_warns_where_the_expression_is_undefined(capsys):
    code, out, _ = run(capsys, "grad", "log(y**3)", "--at", "y=-2")
    assert code == 0 and "warning: the expression itself is not real-valued at y=-2" in out
    code, out, _ = run(capsys, "grad", "log(y**3)", "--at", "y=2")
    assert "warning" not in out


def test_grad_help_example_is_one_grad_accepts(capsys):
    with pytest.raises(SystemExit):
        main(["grad", "--help"])
    out = capsys.readouterr().out
    example = re.search(r'e\.g\. "([^"]+)"', out).group(1)
    assert run(capsys, "grad", example)[0] == 0
