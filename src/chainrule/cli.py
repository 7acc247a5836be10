"""The ``chainrule`` command: a thin face over the Python API.

Exit status: 0 on success, 2 on a usage error, 1 on a data, model or expression error,
each with a one-line message (``--debug`` shows the traceback). Heavy imports happen
inside the commands, so ``chainrule --help`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATASET_DEFAULTS = {
    # dataset: (hidden layers, epochs, batch size)
    "digits": ([64], 30, 32),
    "mnist": ([100], 10, 64),
    "file": ([64], 50, 32),
}


class UsageError(Exception):
    """A command-line mistake: exit status 2."""


class _Help(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and action.option_strings and action.nargs != 0 and \
                action.default not in (None, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, rest = super().parse_known_args(args, namespace)
        if self.prog == "chainrule" and getattr(ns, "command", None):
            _check_extras(ns)   # the extras a command needs, before any work starts
        return ns, rest

    def error(self, message: str) -> Any:  # one line, then exit 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def _size(text: str) -> int:
    from ._safe_io import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _layers(text: str) -> list[int]:
    parts = [p for p in text.replace(" ", "").split(",") if p != ""]
    if not parts and text.strip() == "":
        return []
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give hidden layer sizes as whole numbers "
                                         f"separated by commas, such as 100,50") from None
    if any(s < 1 or s > 100_000 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: layer sizes must be between 1 and 100000")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="chainrule", description="The mathematics of neural networks, "
                "executable: train, evaluate, explain, and differentiate.")
    p.add_argument("--version", action="version", version=f"chainrule {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--max-memory", type=_size, metavar="SIZE",
                        help="the most memory loading files may take, e.g. 2G (default: "
                        "half the memory available, or $CHAINRULE_MAX_MEMORY)")

    t = sub.add_parser("train", parents=[common],
                       help="train a network (default: digits, no network needed)")
    t.add_argument("--dataset", default="digits",
                   help="digits (built in), mnist, or a PATH.csv / PATH.npz file")
    t.add_argument("--target", help="the label column of a CSV/NPZ file (default: last)")
    t.add_argument("--data-dir", help="folder with the MNIST files (default: "
                   "$CHAINRULE_DATA or the user cache)")
    t.add_argument("--layers", type=_layers, help="hidden layer sizes, e.g. 100,50 "
                   "(default: 64 for digits and files, 100 for mnist)")
    t.add_argument("--activation", default=None, help="hidden activation (relu, tanh, "
                   "sigmoid, leaky_relu, elu, gelu, softplus, identity; default relu)")
    t.add_argument("--output", default=None, help="output activation (default: softmax for "
                   "classes, identity for regression)")
    t.add_argument("--cost", default=None, help="mse, cross_entropy or binary_cross_entropy "
                   "(default: fits the output)")
    t.add_argument("--optimizer", default=None, help="the optimiser (default: adam)",
                   choices=["gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
    t.add_argument("--lr", type=_positive_float, help="learning rate alpha (default: per "
                   "optimizer: 3e-3 for adam and adamw, 0.1 for gd and sgd)")
    t.add_argument("--schedule", default=None, choices=["cosine", "constant"],
                   help="the learning rate's schedule over the run (default: cosine)")
    t.add_argument("--epochs", type=_positive_int, help="passes over the training data "
                   "(default: 30 for digits, 10 for mnist, 50 for files)")
    t.add_argument("--batch-size", type=_positive_int, help="examples per step (default: "
                   "32 for digits and files, 64 for mnist)")
    t.add_argument("--seed", type=int, default=None, help="the split, the initial weights "
                   "and the shuffles (default: 0)")
    t.add_argument("--weight-decay", type=float, default=None, metavar="LAMBDA",
                   help="L2 weight decay (default: 15/m for regression on m training rows, 0 "
                   "for classification)")
    t.add_argument("--out", default="model.safetensors", help="where to save the model")
    t.add_argument("--checkpoint", help="write a checkpoint here after every epoch")
    t.add_argument("--resume", help="continue training from this checkpoint")
    t.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="the weights' precision (default: float32)")
    t.add_argument("--task", choices=["classify", "regress"], help="for CSV/NPZ files "
                   "(default: guessed from the target column)")
    t.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                   help="stop once the validation loss has not improved for more than "
                   "PATIENCE epochs, and keep the best epoch's weights (default: off)")
    t.add_argument("--quiet", action="store_true", help="no progress display")
    t.add_argument("--plot", metavar="DIR", help="also write DIR/training_curves.png "
                   "(needs the plot extra)")

    e = sub.add_parser("evaluate", parents=[common],
                       help="evaluate a saved model on a data set")
    e.add_argument("model", help="a model file that train wrote")
    e.add_argument("--dataset", default=None, help="digits, mnist or a .csv / .npz file "
                   "(default: the built-in data set the model was trained on)")
    e.add_argument("--target", help="the label column (default: the one train used)")
    e.add_argument("--data-dir", help="folder with the MNIST files")
    e.add_argument("--split", choices=["test", "all"], default=None,
                   help="test: the held-out rows train used (the default when the data is "
                   "the model's own: a built-in set, or a file with the same SHA-256); "
                   "all: every row (the default for other files)")
    e.add_argument("--seed", type=int, default=None, help="the split's seed for a model "
                   "file without provenance (default: the seed train used, else 0)")

    pr = sub.add_parser("predict", parents=[common], help="predict the rows of a CSV file")
    pr.add_argument("model", help="a model file that train wrote")
    pr.add_argument("input", help="CSV file with a header row of feature names")
    pr.add_argument("--out", help="write predictions here (CSV) instead of standard output")

    for name, what, example in (
            ("jacobian", "the Jacobian of comma-separated expressions",
             '"2*x + y**3, exp(y) - 13*x"'),
            ("grad", "the gradient of one expression", '"x**2 * y + cos(y)"')):
        j = sub.add_parser(name, parents=[common],
                           help=f"{what}, symbolic and checked by autodiff")
        j.add_argument("expr", help=f"e.g. {example} (write products with *: 2*x)")
        j.add_argument("--wrt", help="variables, e.g. x,y (default: in order of appearance)")
        j.add_argument("--at", help="a point, e.g. x=1,y=2: also print the value there")
        j.add_argument("--latex", action="store_true", help="print LaTeX")

    ex = sub.add_parser("export", parents=[common], help="export a saved model to ONNX")
    ex.add_argument("model", help="a model file that train wrote")
    ex.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    ex.add_argument("--dtype", choices=["float32", "float64"], help="default: the model's")

    pl = sub.add_parser("plot", parents=[common],
                        help="pictures: training curves, the cost surface, decision "
                        "regions, weights")
    pl.add_argument("what", choices=["curves", "surface", "regions", "weights"],
                    help="curves: loss and accuracy per epoch; surface: the cost over two "
                    "weights and a descent path; regions: the decision regions of 2-D data; "
                    "weights: W^1 as images")
    pl.add_argument("model", help="a model file or a checkpoint")
    pl.add_argument("--out", required=True, help="a .png or .svg file")
    pl.add_argument("--dataset", default=None, help="digits, mnist or a .csv / .npz file "
                    "(default: the built-in data set the model was trained on)")
    pl.add_argument("--target", help="the label column (default: the one train used)")
    pl.add_argument("--data-dir", help="folder with the MNIST files")
    pl.add_argument("--seed", type=int, default=None, help="the split's seed (default: the "
                    "seed train used); with --fresh, also the initial weights")
    pl.add_argument("--w1", default=None, help="surface: the first weight as l,j,k "
                    "(w^l_jk) (default: the two weights of the largest |dC/dw| here)")
    pl.add_argument("--w2", default=None, help="surface: the second weight as l,j,k "
                    "(default: as for --w1; beside a given --w1, the steepest other one)")
    pl.add_argument("--steps", type=_positive_int, default=30,
                    help="surface: gradient descent steps of the drawn path")
    pl.add_argument("--lr", type=_positive_float, default=0.5,
                    help="surface: the path's learning rate alpha")
    pl.add_argument("--kind", choices=["contour", "3d", "both"], default="both",
                    help="surface: a contour map, a 3-D surface, or both side by side")
    pl.add_argument("--fresh", action="store_true", help="surface: start from freshly "
                    "initialised weights (--seed) instead of the trained ones")

    x = sub.add_parser("explain", parents=[common],
                       help="the text's worked examples, step by step")
    x.add_argument("--model", help="explain one example through this model instead")
    x.add_argument("--input", help="the example: comma-separated features, or a CSV file "
                   "(its first row)")
    x.add_argument("--label", help="the example's true class (default: the predicted one)")
    x.add_argument("--lr", type=_positive_float, default=0.5, help="alpha for the gradient "
                   "descent step")
    x.add_argument("--format", choices=["text", "markdown", "latex"], default="text",
                   help="how to write the derivation")

    _data_parser(sub, common)
    g = sub.add_parser("playground", parents=[common], help="train a network in the browser "
                       "and watch the equations with live numbers (local server)")
    g.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    g.add_argument("--no-browser", action="store_true", help="print the address instead of "
                   "opening the browser")
    return p


# --------------------------------------------------------------------------- data


def _load_dataset(args: argparse.Namespace, for_training: bool) -> dict[str, Any]:
    """Arrays for a dataset argument, split as train uses them."""
    import numpy as np

    from .data import DataError, LabelEncoder, load_csv, load_digits, load_mnist, load_npz, split

    name = args.dataset
    if name == "digits":
        X, y = load_digits()
        tr, va, te = split(len(y), (0.7, 0.1, 0.2), seed=args.seed, stratify=y)
        return {"kind": "digits", "X": X, "y": y, "train": tr, "val": va, "test": te,
                "classify": True, "classes": None, "feature_names": None}
    if name == "mnist":
        # no copies of the 188 MB training images: the last 5,000 of the training file
        # (in its published order) are the validation set, as views
        Xtr, ytr, Xte, yte = load_mnist(args.data_dir, max_memory=args.max_memory)
        return {"kind": "mnist", "arrays": (Xtr[:55000], ytr[:55000], Xtr[55000:],
                                            ytr[55000:], Xte, yte),
                "X": Xte, "y": yte, "test": np.arange(10000), "classify": True,
                "classes": None, "feature_names": None}
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _npy_dataset(path)
    if suffix == ".csv":
        table = load_csv(path, args.target, max_memory=args.max_memory)
    elif suffix == ".npz":
        table = load_npz(path, args.target, max_memory=args.max_memory)
    else:
        raise UsageError(f"--dataset {name!r}: use digits, mnist, or a .csv / .npz / .npy "
                         f"file")
    y_raw = table.y
    task = getattr(args, "task", None)
    if task is None:
        uniq = np.unique(y_raw)
        classify = y_raw.dtype.kind in "USO" or (y_raw.dtype.kind in "iub" and len(uniq) <= 50)
    else:
        classify = task == "classify"
    if classify:
        enc = LabelEncoder().fit(y_raw)
        if for_training and len(enc.classes_) < 2:
            raise ValueError(f"{path}: the target {table.target!r} has a single class "
                             f"({str(enc.classes_[0])!r}); a classifier needs at least two")
        y = enc.transform(y_raw) if for_training else y_raw
        classes = enc.classes_
    else:
        if y_raw.dtype.kind in "USO":
            raise ValueError(f"{path}: --task regress needs a numeric target column")
        y = y_raw.astype(np.float64)
        if y.size and float(np.max(np.abs(y))) > 1e30:
            raise DataError(f"{path}: target values larger than 1e30 in absolute value; "
                            f"rescale the target column {table.target!r}")
        classes = None
    m = len(y)
    if for_training and m < 10:
        raise ValueError(f"{path}: {m} rows are too few to train and test on (need 10 or more)")
    parts = split(m, (0.7, 0.1, 0.2), seed=args.seed, stratify=y if classify else None) \
        if m >= 10 else [np.arange(m)] * 3
    return {"kind": "file", "X": table.X, "y": y, "train": parts[0], "val": parts[1],
            "test": parts[2], "classify": classify, "classes": classes,
            "feature_names": table.feature_names, "target": table.target}


# --------------------------------------------------------------------------- commands


def _say(msg: str) -> None:
    print(msg, flush=True)


TRAIN_DEFAULTS = {"activation": "relu", "optimizer": "adam", "schedule": "cosine",
                  "dtype": "float32", "seed": 0}


def _output(path: str, flag: str, *inputs: tuple[str, str | None]) -> None:
    """The write rule, before any work: ``path`` may be nothing or a regular file, in an
    existing folder, and none of the ``inputs`` (flag, path) of the same run."""
    from ._safe_io import check_writable, same_file

    check_writable(path, flag)
    for other_flag, other in inputs:
        if other and same_file(path, other):
            raise UsageError(f"{flag} {path} is also the {other_flag}; a run that writes "
                             f"over its own input can lose it: write to another file")


def _check_train_paths(args: argparse.Namespace) -> None:
    data = args.dataset if args.dataset not in ("digits", "mnist") else None
    _output(args.out, "--out", ("--checkpoint", args.checkpoint),
            ("checkpoint being resumed (--resume)", args.resume), ("--dataset", data))
    if args.checkpoint:
        _output(args.checkpoint, "--checkpoint", ("--dataset", data))
    if args.plot:
        plot_dir = Path(args.plot)
        if plot_dir.exists() or plot_dir.is_symlink():
            if not plot_dir.is_dir():
                raise ValueError(f"--plot {args.plot}: is not a folder")
            _output(str(plot_dir / "training_curves.png"), "--plot",
                    ("--out", args.out), ("--checkpoint", args.checkpoint))


def _check_resume(args: argparse.Namespace, net: Any, ck: dict[str, Any]) -> None:
    """A resumed run continues the same run: a setting given on the command line that
    differs from the checkpoint's is refused, not silently ignored."""
    fit, opt = ck["fit"], ck["optimizer"]
    hidden_act = net.layers[0].activation.name if len(net.layers) > 1 else None
    if args.epochs is not None and args.epochs < fit.get("epochs", 0):
        raise UsageError(f"--resume {args.resume} continues the same run, of "
                         f"{fit.get('epochs')} epochs; --epochs {args.epochs} would end it "
                         f"before that: give a larger --epochs to extend it, or none")
    theirs = {"--layers": ("layers", net.sizes[1:-1]), "--lr": ("lr", opt.get("lr")),
              "--batch-size": ("batch_size", fit.get("batch_size")),
              "--optimizer": ("optimizer", opt.get("name")),
              "--schedule": ("schedule", fit.get("schedule")),
              "--dtype": ("dtype", net.dtype.name), "--activation": ("activation", hidden_act),
              "--output": ("output", net.layers[-1].activation.name),
              "--cost": ("cost", net.cost.name), "--seed": ("seed", fit.get("seed")),
              "--early-stopping": ("early_stopping", fit.get("early_stopping")),
              "--weight-decay": ("weight_decay", opt.get("weight_decay"))}
    changed = [f"{flag} {getattr(args, attr)} (the checkpoint has {value})"
               for flag, (attr, value) in theirs.items()
               if getattr(args, attr) is not None and getattr(args, attr) != value]
    if changed:
        raise UsageError(f"--resume {args.resume} continues the same run, but "
                         f"{'; '.join(changed)}; drop the changed option(s), or start a new run "
                         f"without --resume")


def _check_cost_and_output(args: argparse.Namespace) -> None:
    """The costs that read the outputs as probabilities need outputs that are ones."""
    need = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(args.cost or "")
    if need and args.output and args.output != need:
        raise UsageError(f"--cost {args.cost} reads the outputs as probabilities, so it needs "
                         f"--output {need}, not {args.output}; or use --cost mse")


def _check_network_memory(sizes: list[int], args: argparse.Namespace) -> None:
    from ._safe_io import check_budget

    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    itemsize = 4 if args.dtype == "float32" else 8
    check_budget(params * (3 * itemsize + 16), args.max_memory, f"a network of sizes {sizes}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train; under mpiexec or srun with several ranks, all of them train one model
    (chainrule.distributed) and the job fails whole: the process the launcher started
    forks the rank and watches it, so a rank killed outright (SIGKILL) still ends the job
    with one line (distributed.supervisor)."""
    from .distributed.supervisor import launched_size, supervise

    supervise(launched_size())           # before NumPy and mpi4py load
    from .distributed import guard, world

    comm = world()
    with guard(comm):
        return _train(args, comm)


def _train(args: argparse.Namespace, comm: Any = None) -> int:
    import numpy as np

    from .data import Standardizer
    from .io import Checkpoint, load_checkpoint, save_model
    from .nn import Network
    from .optim import get_optimizer
    from .training.progress import progress_callback

    _check_train_paths(args)
    rank0 = comm is None or comm.Get_rank() == 0  # the others neither print nor write
    if not rank0:
        args.quiet, args.plot = True, None
    resumed = None
    if args.resume:  # the run's own seed decides the split and the shuffles
        resumed = load_checkpoint(args.resume, max_memory=args.max_memory)
        _check_resume(args, resumed[0], resumed[1])
        args.seed = int(resumed[1]["fit"].get("seed", 0))
    for k, v in TRAIN_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    _check_cost_and_output(args)
    d = _load_dataset(args, for_training=True)
    kind = d["kind"]
    hidden, epochs, batch = DATASET_DEFAULTS[kind]
    hidden = args.layers if args.layers is not None else hidden
    epochs = args.epochs or epochs
    batch = args.batch_size or batch
    pre: dict[str, Any] = {}
    if "arrays" in d:
        Xtr, ytr, Xva, yva, Xte, yte = d["arrays"]
    else:
        X, y = d["X"], d["y"]
        if kind == "file":
            std = Standardizer().fit(X[d["train"]])
            X = std.transform(X)
            pre = {"mean": std.mean_, "scale": std.scale_}
        Xtr, ytr = X[d["train"]], y[d["train"]]
        Xva, yva = X[d["val"]], y[d["val"]]
        Xte, yte = X[d["test"]], y[d["test"]]
    X = Xte
    # regression: train on the standardised target, then fold its inverse into the output
    # layer (identity output only), so the saved model, its ONNX export and predict() all
    # answer in the target's own units
    y_scaler = None
    if not d["classify"] and (args.output or "identity") == "identity" and len(ytr):
        y_scaler = (float(np.mean(ytr)), float(np.std(ytr)) or 1.0)
        ytr, yva = (ytr - y_scaler[0]) / y_scaler[1], (yva - y_scaler[0]) / y_scaler[1]
    if d["classify"]:
        n_out = int(len(d["classes"]) if d["classes"] is not None else max(ytr.max(),
                                                                           yte.max()) + 1)
        out_act = args.output or "softmax"
    else:
        n_out = 1
        out_act = args.output or "identity"
    history = None
    initial_epoch = 0
    opt_arg: Any = args.optimizer
    if resumed is not None:
        net, ck, state = resumed
        if net.sizes[0] != X.shape[1] or net.sizes[-1] != n_out:
            raise ValueError(f"{args.resume}: the checkpoint's network {net.sizes} does not "
                             f"fit this data ({X.shape[1]} features, {n_out} outputs)")
        oc = dict(ck["optimizer"])
        opt_arg = get_optimizer(oc.pop("name"), **{k: v for k, v in oc.items()
                                                   if k in ("lr", "weight_decay", "momentum",
                                                            "beta1", "beta2", "eps")})
        opt_arg.load_state(state, oc.get("t", 0))
        initial_epoch = ck["epoch"] + 1
        history = ck["history"]
        fs = ck.get("fit", {})
        # a larger --epochs extends the run (a cosine schedule is then laid over the new
        # length from the step reached: README.md); otherwise the run's own length
        epochs_total = max(int(fs.get("epochs", epochs)), args.epochs or 0)
        args.early_stopping = fs.get("early_stopping")
        epochs = max(0, epochs_total - initial_epoch)
        es = ck["callbacks"].get("EarlyStopping") or {}
        if es.get("stopped"):          # the run had ended early: its best weights stand
            epochs = 0
            if es.get("best_theta") is not None:
                net.theta[...] = es["best_theta"]
        batch = int(fs.get("batch_size", batch))
        args.schedule = fs.get("schedule", args.schedule)
        if epochs == 0 and rank0:
            _say(f"{args.resume}: already trained for {epochs_total} epochs; nothing to do")
    else:
        _check_network_memory([X.shape[1], *hidden, n_out], args)
        net = Network.from_sizes([X.shape[1], *hidden, n_out], hidden=args.activation,
                                 output=out_act, cost=args.cost, dtype=args.dtype,
                                 seed=args.seed)
        epochs_total = epochs
    if d["classes"] is not None:
        net.classes_ = np.asarray(d["classes"])
    net.preprocessing = {**pre, "feature_names": d.get("feature_names"),
                         "target": d.get("target")}
    callbacks: list[Any] = []
    ck_path = args.checkpoint or args.resume
    if ck_path:
        callbacks.append(Checkpoint(ck_path, {"epochs": epochs_total, "batch_size": batch,
                                              "seed": args.seed, "schedule": args.schedule,
                                              "early_stopping": args.early_stopping}))
    if not args.quiet:
        _say(f"training {net} on {args.dataset}: {len(ytr)} train, {len(yva)} validation, "
             f"{len(yte)} test examples")
        if y_scaler is not None:
            _say(f"the target {d.get('target')!r} is standardised for training (mean "
                 f"{y_scaler[0]:.4g}, standard deviation {y_scaler[1]:.4g}; the losses below "
                 f"are in those units); the saved model predicts in the target's own units")
    # regression's default L2 penalty: 15/m for m training rows (a prior that fades as the
    # data grows), chosen on scikit-learn's diabetes and Friedman #1 against a linear model
    # (benchmarks/regression_defaults.py)
    weight_decay = args.weight_decay if args.weight_decay is not None else (
        0.0 if d["classify"] else min(0.1, 15.0 / max(len(ytr), 1)))
    if epochs:
        net.fit(Xtr, ytr, epochs=epochs, batch_size=batch, optimizer=opt_arg,
                lr=None if args.resume else args.lr, schedule=args.schedule,
                weight_decay=0.0 if args.resume else weight_decay,
                validation_data=(Xva, yva) if len(yva) else None,
                callbacks=callbacks + ([] if args.quiet else [progress_callback()]),
                early_stopping=args.early_stopping, seed=args.seed, verbose=False,
                initial_epoch=initial_epoch, history=history,
                callback_states=resumed[1]["callbacks"] if resumed else None, comm=comm)
    if comm is not None:  # past the last collective: rank 0 may now write the model
        from .distributed.supervisor import FINISHED, set_phase

        set_phase(FINISHED)
    if not rank0:
        return 0
    if y_scaler is not None:
        last = net.layers[-1]
        last.W[...] *= y_scaler[1]
        last.b[...] = last.b * y_scaler[1] + y_scaler[0]
    hist = net.history_ or {}
    if args.early_stopping and len(hist.get("loss", ())) < epochs_total:
        watched, last = "val_loss" if "val_loss" in hist else "loss", len(hist["loss"])
        best = int(np.argmin(hist[watched])) + 1
        _say(f"early stopping after epoch {last}: {watched} has not improved on epoch {best}'s "
             f"for {last - best} epochs (--early-stopping {args.early_stopping}); kept the "
             f"weights of epoch {best}")
    net.provenance = _provenance(args, d, y_scaler, hist)
    if Path(args.out).exists():
        _say(f"replacing {args.out}")
    out = save_model(net, args.out)
    if args.plot and net.history_:
        from .plot import plot_history

        Path(args.plot).mkdir(parents=True, exist_ok=True)  # checked before the run
        _say(f"training curves written to "
             f"{plot_history(net.history_, Path(args.plot) / 'training_curves.png')}")
    if d["classify"]:
        acc = net.accuracy(Xte, yte)
        _say(f"test accuracy {acc * 100:.2f}% ({len(yte)} examples)")
    else:
        rmse = float(np.sqrt(np.mean((net.predict(Xte).reshape(yte.shape) - yte) ** 2)))
        _say(f"test RMSE {rmse:.4g} ({len(yte)} examples)")
        _warn_if_worse_than_mean(rmse, yte, y_scaler[0] if y_scaler else float(np.mean(
            d["y"][d["train"]])))
    _say(f"model saved to {out}")
    return 0


def _warn_if_worse_than_mean(rmse: float, y: Any, mean: float) -> None:
    import numpy as np

    base = float(np.sqrt(np.mean((y - mean) ** 2)))
    if len(y) and rmse > base:
        _say(f"warning: the model does worse than predicting the training mean ({mean:.4g}), "
             f"which scores RMSE {base:.4g}; try more --epochs, another --lr or --layers")


def _sha256(path: str) -> str:
    import hashlib

    from ._safe_io import open_regular

    h = hashlib.sha256()
    with open_regular(path, "data file") as f:     # never a FIFO or a device
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _provenance(args: argparse.Namespace, d: dict[str, Any], y_scaler: Any,
                history: dict[str, list[float]]) -> dict[str, Any]:
    """Where the model came from: the data's name (never its path) and SHA-256, the target,
    the split and its seed, the target's scaler and the history."""
    file = d["kind"] == "file"
    return {"data": {"name": Path(args.dataset).name if file else d["kind"],
                     "sha256": _sha256(args.dataset) if file else None},
            "task": "classify" if d["classify"] else "regress",
            "split": {"train": 0.7, "validation": 0.1, "test": 0.2, "seed": int(args.seed),
                      "stratified": bool(d["classify"])} if file or d["kind"] == "digits"
            else None,
            "target_scaler": None if y_scaler is None else {"mean": y_scaler[0],
                                                            "scale": y_scaler[1]},
            "history": {k: [float(v) for v in vs] for k, vs in history.items()}}


def _own_data(args: argparse.Namespace, prov: dict[str, Any], target: str | None) -> bool:
    """Fill --dataset, --target, --seed and the task from the model's provenance; True when
    the data is the model's own (a built-in set, or a file with the recorded SHA-256), so
    that its held-out split can be scored again."""
    data, sp = prov.get("data") or {}, prov.get("split") or {}
    name = data.get("name")
    if args.dataset is None:
        if not prov and target is not None:
            raise UsageError(f"{args.model} was trained on a file (target {target}) but keeps "
                             f"no record of which (saved by an older chainrule); pass it with "
                             f"--dataset PATH")
        if name is None or name in ("digits", "mnist"):
            args.dataset = name or "digits"
        else:
            raise UsageError(f"{args.model} was trained on the file {name} (target "
                             f"{target or 'its last column'}, SHA-256 "
                             f"{(data.get('sha256') or '?')[:12]}...); pass it with "
                             f"--dataset PATH/{name}")
    if args.target is None:
        args.target = target
    if prov.get("task"):
        args.task = prov["task"]
    if args.dataset in ("digits", "mnist"):
        own = name == args.dataset or not prov
    else:
        own = name is not None and data.get("sha256") == _sha256(args.dataset)
    if "seed" in sp and args.seed is not None and args.seed != sp["seed"] and own and \
            getattr(args, "split", None) != "all" and not getattr(args, "fresh", False):
        raise UsageError(f"--seed {args.seed}: {args.model} was trained with --seed "
                         f"{sp['seed']}, so its held-out rows are that split's; drop --seed "
                         f"(or use --split all to score every row)")
    if args.seed is None:
        args.seed = int(sp.get("seed", 0))
    return own


def _prepared(net: Any, X: Any) -> Any:
    """Raw rows as the network's input: the model's input map, then its scaler."""
    from .data.features import apply_input_map

    pre = net.preprocessing
    X = apply_input_map(X, pre.get("input_map"))
    if pre.get("mean") is not None:
        return (X - pre["mean"]) / pre["scale"]
    return X


def _raw_width(net: Any) -> int:
    from .data.features import raw_width

    return raw_width(net.preprocessing.get("input_map"), net.sizes[0])


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import DataError
    from .io import load_model

    net = load_model(args.model, max_memory=args.max_memory)
    own = _own_data(args, net.provenance or {}, net.preprocessing.get("target"))
    d = _load_dataset(args, for_training=False)
    X, y = d["X"], d["y"]
    width = _raw_width(net)
    if X.shape[1] != width:
        raise DataError(f"{args.dataset} has {X.shape[1]} features but the model expects "
                        f"{width}")
    split = args.split or ("test" if own else "all")
    idx = d["test"] if split == "test" else np.arange(len(y))
    if not args.split and d["kind"] == "file":
        _say(f"scoring the held-out test rows of {args.dataset} (the split train used, seed "
             f"{args.seed})" if own else f"scoring all {len(y)} rows of {args.dataset}: it is "
             f"not the data the model was trained on (use --split to choose)")
    X = _prepared(net, X[idx])
    y = y[idx]
    if net.classes_ is not None and d["kind"] == "file":
        known = {str(c) for c in net.classes_}
        unknown = sorted({str(v) for v in y} - known)
        if unknown:
            raise DataError(f"the data has class(es) {', '.join(unknown[:5])} that the model "
                            f"does not know ({', '.join(sorted(known)[:10])})")
        lookup = {str(c): i for i, c in enumerate(net.classes_)}
        y = np.array([lookup[str(v)] for v in y])
    if net.is_classifier:
        ev = net.evaluate(X, y)
        _say(f"accuracy {ev['accuracy'] * 100:.2f}%  loss {ev['loss']:.4f}  ({len(y)} examples)")
    else:
        pred = net.predict(X)
        rmse = float(np.sqrt(np.mean((pred - y.astype(float)) ** 2)))
        _say(f"RMSE {rmse:.4g}  ({len(y)} examples)")
        scaler = (net.provenance or {}).get("target_scaler")
        if scaler:
            _warn_if_worse_than_mean(rmse, y.astype(float), scaler["mean"])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io as _io

    from .data.tabular import read_features
    from .io import atomic_write, load_model

    if args.out:
        _output(args.out, "--out", ("input", args.input), ("model", args.model))
    net = load_model(args.model, max_memory=args.max_memory)
    X = read_features(args.input, net.preprocessing.get("feature_names"), _raw_width(net),
                      max_memory=args.max_memory)
    pred = net.predict(_prepared(net, X))
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["prediction"])
    for v in pred:
        w.writerow([v.item() if hasattr(v, "item") else v])
    if args.out:
        atomic_write(args.out, buf.getvalue().encode())
        _say(f"{len(pred)} predictions written to {args.out}")
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def cmd_symbolic(args: argparse.Namespace) -> int:
    from .symbolic import ExpressionError

    try:
        return _symbolic(args)
    except RecursionError:
        raise ExpressionError("the expression nests too deeply for symbolic work") from None


def _symbolic(args: argparse.Namespace) -> int:
    import numpy as np

    from .symbolic import (
        ExpressionError,
        check_against_autodiff,
        evaluate,
        gradient,
        jacobian,
        latex,
        parse,
        parse_point,
        singular_note,
    )

    def sympy_matrix(expr: Any) -> Any:
        import sympy

        return sympy.Matrix(expr.to_sympy())

    e = parse(args.expr)
    point = parse_point(args.at) if args.at else None
    wrt = args.wrt.replace(",", " ").split() if args.wrt else None
    absent = [v for v in wrt or () if v not in e.variables]
    if absent:
        raise ExpressionError(f"--wrt {', '.join(absent)}: not in the expression (its "
                              f"variables: {', '.join(e.variables) or 'none'}); the "
                              f"derivative would be 0")
    names = wrt or e.variables
    if args.command == "grad":
        if len(e.trees) != 1:
            raise ExpressionError("grad takes one expression; use jacobian for several")
        res = gradient(e, wrt)
        label = f"one row per variable: {', '.join(f'd/d{n}' for n in names)}"
    else:
        res = jacobian(e, wrt)
        label = (f"one row per expression, one column per variable: "
                 f"{', '.join(f'd/d{n}' for n in names)}")
    _say(f"% {label}" if args.latex else label)
    _say(latex(res) if args.latex else _pretty(res))
    if point is not None:
        try:
            evaluate(sympy_matrix(e), point)
        except ExpressionError:
            _say(f"warning: the expression itself is not real-valued at "
                 f"{', '.join(f'{k}={v:g}' for k, v in point.items())}; the derivative "
                 f"below holds only where the expression is defined")
        val = evaluate(res, point)
        _say(f"at {', '.join(f'{k}={v:g}' for k, v in point.items())}:")
        _say(_format_array(val))
        note = singular_note(val)
        if note:
            _say(note)
            _say("autodiff check: skipped where the value is not finite")
            finite = np.isfinite(val)
            if not finite.any():
                return 0
        sym, ad, err = check_against_autodiff(e, names, point)
        if note:  # compare the finite entries only
            keep = np.isfinite(sym)
            from .calculus.symbolic import _relative_difference

            err = _relative_difference(sym[keep], np.asarray(ad)[keep])
        status = "agrees" if err < 1e-9 else "DISAGREES"
        _say(f"autodiff check: {status} (relative difference {err:.1e})")
        if err >= 1e-9:
            return 1
    return 0


def _pretty(res: Any) -> str:
    rows = res.tolist()
    return "[" + ",\n ".join("[" + ", ".join(str(c) for c in r) + "]" for r in rows) + "]"


def _format_array(a: Any) -> str:
    import numpy as np

    return np.array2string(np.asarray(a), precision=6, suppress_small=True)


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_model, explain_text, render

    if args.model:
        if not args.input:
            raise UsageError("explain --model needs --input (features or a CSV file)")
        steps = explain_model(args.model, args.input, label=args.label, lr=args.lr)
    else:
        if args.input:
            raise UsageError("--input needs --model")
        steps = explain_text(lr=args.lr)
    sys.stdout.write(render(steps, args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .io import load_model
    from .io.onnx_export import export_onnx

    _output(args.onnx, "--onnx", ("model", args.model))
    net = load_model(args.model, max_memory=args.max_memory)
    out = export_onnx(net, args.onnx, dtype=args.dtype)
    _say(f"ONNX model (opset 17) written to {out}")
    return 0


def _weight_spec(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise UsageError(f"{text!r}: give a weight as l,j,k, such as 1,0,3") from None
    if len(parts) != 3:
        raise UsageError(f"{text!r}: give a weight as three numbers l,j,k")
    return parts  # type: ignore[return-value]


def cmd_plot(args: argparse.Namespace) -> int:
    from . import plot
    from .io import ModelFileError, load_checkpoint, load_model

    if Path(args.out).suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"{args.out}: write pictures as .png or .svg")
    data = args.dataset if args.dataset not in ("digits", "mnist", None) else None
    _output(args.out, "--out", ("model", args.model), ("--dataset", data))
    if args.what == "curves":
        try:
            _, ck, _ = load_checkpoint(args.model, max_memory=args.max_memory)
            history = ck["history"]
        except ModelFileError:  # a model file keeps its history too
            history = load_model(args.model, max_memory=args.max_memory).history_
        if not history:
            raise ValueError(f"{args.model} holds no training history (a model saved before "
                             f"chainrule kept it); train it again, or pass a --checkpoint")
        out = plot.plot_history(history, args.out)
    else:
        net = load_model(args.model, max_memory=args.max_memory)
        _own_data(args, net.provenance or {}, net.preprocessing.get("target"))
        d = _load_dataset(args, for_training=True)
        if "arrays" in d:
            Xs, ys = d["arrays"][0][:1000], d["arrays"][1][:1000]
        else:
            tr = d["train"][:1000]
            Xs, ys = d["X"][tr], d["y"][tr]
        Xs = _prepared(net, Xs)
        Xt = _prepared(net, d["X"][d["test"]])
        yt = d["y"][d["test"]]
        if Xs.shape[1] != net.sizes[0]:
            raise ValueError(f"{args.dataset} has {Xs.shape[1]} features but the model "
                             f"expects {net.sizes[0]}")
        if args.what == "surface":
            if args.fresh:
                net.initialize(args.seed)
            out = plot.plot_cost_surface(net, Xs, ys, args.w1 and _weight_spec(args.w1),
                                         args.w2 and _weight_spec(args.w2), args.out,
                                         steps=args.steps,
                                         lr=args.lr, kind=args.kind)
        elif args.what == "regions":
            out = plot.plot_decision_regions(net, Xt, yt, args.out)
        else:
            out = plot.plot_weights(net, args.out, Xs, ys)
    _say(f"picture written to {out}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "jacobian": cmd_symbolic, "grad": cmd_symbolic, "explain": cmd_explain,
            "export": cmd_export, "plot": cmd_plot}


def cmd_playground(args: argparse.Namespace) -> int:
    from .playground import serve  # lazy: the server loads only for this command

    serve(port=args.port, open_browser=not args.no_browser, say=_say)
    return 0


COMMANDS["playground"] = cmd_playground


def _run(args: argparse.Namespace, debug: bool) -> int:
    """The command, with Python's warnings held back: a run that fails prints its one-line
    error alone (a warning about an overflow is a symptom, not the cause); a run that
    succeeds prints each distinct warning once, at the end, on one line."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        code = COMMANDS[args.command](args)
    seen = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in seen:
            seen.add(text)
            print(f"chainrule: warning: {text}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- data sets larger
# than memory (chainrule.data.memmap, docs/scaling.md)

def _data_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    dp = sub.add_parser("data", parents=[common], help="prepare data sets",
                        formatter_class=_Help)
    dsub = dp.add_subparsers(dest="data_command", required=True,
                             help="convert: a CSV file to a .npy table")
    cv = dsub.add_parser("convert", parents=[common], formatter_class=_Help,
                         help="stream a numeric CSV file into a .npy table (target last) "
                              "that training maps from disk")
    cv.add_argument("input", help="a CSV file of numbers with a header row")
    cv.add_argument("output", help="the .npy file to write")
    cv.add_argument("--target", help="the target column (default: the last)")


def cmd_data(args: argparse.Namespace) -> int:
    from .data.memmap import convert_csv

    if not args.output.lower().endswith(".npy"):
        raise UsageError(f"{args.output}: the output must be a .npy file")
    _output(args.output, "output", ("input", args.input))
    m, n = convert_csv(args.input, args.output, args.target)
    _say(f"{args.output}: {m} rows x {n} columns (float32, target last)")
    return 0


COMMANDS["data"] = cmd_data


def _npy_dataset(path: Path) -> dict[str, Any]:
    """A .npy table (features, then the target: ``chainrule data convert``) mapped from
    disk, never read whole: train, validation and test are its first 70%, next 10% and
    last 20% of rows in file order, as views (shuffle the rows when making the file), and
    the features are used as they are (no standardisation, which would copy them).
    ``evaluate`` sees the test rows only (and copies them into memory)."""
    import numpy as np

    from .data.memmap import open_table

    X, y = open_table(path)
    m = len(y)
    if m < 10:
        raise ValueError(f"{path}: {m} rows are too few to train and test on (need 10+)")
    a, b = int(m * 0.7), int(m * 0.8)
    classify = y.dtype.kind == "i" and len(np.unique(y[:100_000])) <= 50
    return {"kind": "file", "arrays": (X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:]),
            "X": X[b:], "y": y[b:], "test": np.arange(m - b), "classify": classify,
            "classes": None, "feature_names": None, "target": None}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 0
        return _run(args, debug)
    except UsageError as exc:
        if debug:
            raise
        print(f"chainrule: usage error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError:
        if debug:
            raise
        print("chainrule: error: out of memory; use smaller data or a smaller network, or "
              "a lower --max-memory to be refused before the work starts", file=sys.stderr)
        return 1
    except Exception as exc:  # every user-facing failure ends here, in one line
        if debug:
            raise
        known = _is_user_error(exc)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if known:
            print(f"chainrule: error: {msg}", file=sys.stderr)
        else:
            print(f"chainrule: internal error: {type(exc).__name__}: {msg} (run with --debug "
                  f"for the traceback, and please report it)", file=sys.stderr)
        return 1


def _check_extras(args: argparse.Namespace) -> None:
    """The optional packages a command needs, checked before any work starts."""
    from importlib.util import find_spec

    needs = {"plot": "matplotlib", "export": "onnx", "grad": "sympy", "jacobian": "sympy"}
    extra = {"matplotlib": "plot", "onnx": "onnx", "sympy": "symbolic"}
    module = needs.get(args.command)
    if args.command == "train" and args.plot:
        module = "matplotlib"
    if module and (sys.modules.get(module, ...) is None or find_spec(module) is None):
        what = "train --plot" if args.command == "train" else args.command
        raise UsageError(f"{what} needs the {module} package, which is not installed: "
                         f"pip install 'chainrule[{extra[module]}]'")


def _is_user_error(exc: Exception) -> bool:
    from .calculus.core import TracerError
    from .calculus.symbolic import ExpressionError
    from .data import DataError
    from .training import TrainingDiverged

    return isinstance(exc, (DataError, ExpressionError, TracerError, TrainingDiverged,
                            ValueError, OSError, ImportError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
