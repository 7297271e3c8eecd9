"""graphdsl train: gradient descent on the params, minimising one scalar output."""
from __future__ import annotations

import sys
import time
from dataclasses import replace


from ..diagnostics import GraphDSLError
from ..fileio import save_npz
from ..train import OPTIMIZERS, Diverged, plot_losses, require_matplotlib, train
from .common import (UsageError, add_backend_options, add_model_argument, add_output_option, add_value_options,
                     gather_values, load_model, shape_text, summarise)
from .signals import StopOnSignals

HELP = "train the params by gradient descent on the one scalar output"


def add_parsers(sub):
    p = sub.add_parser("train", help=HELP,
                       description=HELP + ". The model is compiled and differentiated once; each step runs "
                                          "the compiled plan and updates the params. Ctrl-C, SIGTERM "
                                          "and SIGHUP stop cleanly and still save; on divergence the last "
                                          "finite params are saved.")
    add_model_argument(p)
    add_value_options(p)
    p.add_argument("--lr", type=float, required=True, metavar="F", help="learning rate")
    p.add_argument("--steps", type=int, required=True, metavar="N", help="number of update steps")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="sgd (default), momentum (0.9, as PyTorch's SGD) or adam")
    p.add_argument("--momentum", type=float, default=0.9, metavar="F", help="momentum factor (default 0.9)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="examples per step, sliced along the inputs' free dim (default: all)")
    p.add_argument("--batch-dim", metavar="NAME", help="the free dim to batch along, when there are several")
    p.add_argument("--no-shuffle", action="store_true", help="take batches in order instead of shuffled")
    p.add_argument("--of", metavar="NAME", help="the scalar to minimise (default: the one output)")
    p.add_argument("--params", metavar="A,B", help="the params to train (default: all)")
    add_output_option(p, "--save", metavar="FILE.npz",
                      help="save the trained params (also when stopped by a signal, and the last finite ones "
                           "when training diverges)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="also save the params to the --save file every N steps (resume with --load FILE)")
    add_output_option(p, "--plot", metavar="FILE.png", help="draw the loss curve (needs matplotlib: graphdsl[plot])")
    p.add_argument("--json", action="store_true", help='print {"steps": N, "loss": ..., "params": {...}} as JSON')
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_backend_options(p)
    p.add_argument("--distributed", action="store_true",
                   help="with --backend torch, under torchrun: data-parallel training (DistributedDataParallel; "
                        "each process takes its shard of every batch; only rank 0 prints and saves)")
    p.set_defaults(run=run)


def run(args, out) -> int:
    if not args.lr > 0 or args.lr != args.lr or args.lr == float("inf"):
        raise UsageError(f"--lr must be a positive number, not {args.lr}")
    if args.steps < 0:
        raise UsageError(f"--steps must be >= 0, not {args.steps}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, not {args.batch_size}")
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.save):
        raise UsageError("--checkpoint-every needs N >= 1 and --save FILE (the checkpoints go there)")
    if args.plot:
        require_matplotlib()  # before training, not after
    parallel = _data_parallel(args)
    finished = False
    try:
        status = _train(args, out, parallel)
        finished = True
        return status
    except GraphDSLError:
        if parallel is None or parallel.is_main:
            raise
        return 1  # every rank meets the same error; rank 0 alone says it
    finally:
        if parallel is not None:
            parallel.close(finished)


def _data_parallel(args):
    """This process's rank of a torchrun job (--distributed), or None."""
    if not args.distributed:
        return None
    if args.backend != "torch":
        raise UsageError("--distributed needs --backend torch")
    from ..interop import backends

    backends.check("torch", args.device)  # E311 without torch, E312 without the device
    from ..interop.torch_distributed import DataParallel, under_torchrun

    if not under_torchrun():
        raise UsageError("--distributed runs under torchrun, e.g. torchrun --standalone --nproc_per_node 2 "
                         "-m graphdsl train FILE --backend torch --distributed ...")
    return DataParallel(args.device)


def _train(args, out, parallel) -> int:
    main = parallel is None or parallel.is_main  # only rank 0 prints and writes files
    if not main:
        args.save = args.plot = args.checkpoint_every = None
    model = load_model(args)
    for w in model.warnings if main else ():
        out.warn(w, model.source)
    values = gather_values(args)
    show = main and not args.json and not args.quiet and sys.stdout.isatty() and out.console.is_terminal
    with StopOnSignals() as stop:
        try:
            with stop.guarding(), _Progress(out.console, args.steps, show) as bar:
                result = train(model, values, lr=args.lr, steps=args.steps, optimizer=args.optimizer,
                               batch_size=args.batch_size, of=args.of, params=args.params, seed=args.seed,
                               batch_dim=args.batch_dim, shuffle=not args.no_shuffle, momentum=args.momentum,
                               progress=bar.update if show else None, callback=_checkpoints(args),
                               backend=args.backend, device=args.device, distributed=parallel)
        except Diverged as err:  # saved outside guarding(): a signal now waits for the file
            raise _save_kept(err, args) from None
        if args.save:
            save_npz(args.save, result.params, args.force)
        if args.plot:
            plot_losses(result.losses, args.plot, title=f"{args.file}: {result.of}, {args.optimizer} lr {args.lr:g}",
                        force=args.force)
        try:
            if main and args.json:
                out.json({**result.to_json(), "interrupted": result.interrupted, "signal": stop.name})
            elif main:
                _report(result, args, out, stop.name)
        except OSError:  # SIGHUP: the terminal may be gone; the params are saved, which is what matters
            if stop.received is None:
                raise
    return stop.status or (130 if result.interrupted else 0)


def _checkpoints(args):
    """The training callback that saves the params every --checkpoint-every steps (atomically:
    a stop during a write keeps the previous checkpoint), or None."""
    if not args.checkpoint_every:
        return None

    def save(step, loss, params):
        if step % args.checkpoint_every == 0:
            save_npz(args.save, params, args.force)

    return save


def _save_kept(err: Diverged, args) -> GraphDSLError:
    """Save the last finite params of a diverged run to --save; the error, saying what was saved."""
    first = err.diagnostics[0]
    if err.kept is None:
        return err
    if not args.save:
        note = "rerun with --save FILE to keep them"
    else:
        save_npz(args.save, err.kept.params, args.force)
        note = f"saved them to {args.save}: resume from there with --load {args.save}"
    return GraphDSLError([replace(first, notes=first.notes + (note,))] + err.diagnostics[1:], err.source)


def _report(result, args, out, signal_name=None):
    rate = f"{result.steps_per_second:,.0f} steps/s" if result.seconds > 0 and result.steps else ""
    how = f"{args.optimizer}, lr {args.lr:g}" + (f", batches of {args.batch_size} along `{result.batch_dim}`"
                                               if result.batch_dim else "")
    if result.interrupted:
        by = f" by {signal_name}" if signal_name else ""
        out.line(f"interrupted{by} after {result.steps} of {args.steps} steps ({how})")
    else:
        out.line(f"trained {', '.join(result.params)} to minimise {result.of}: {result.steps} steps ({how})"
                + (f" in {result.seconds:.2f} s, {rate}" if rate else ""))
    first = f"{result.losses[0]:.6g} at the start, " if result.losses else ""
    out.line(f"{result.of}: {first}{result.loss:.6g} at the end")
    out.table(("param", "shape", "value"), [(name, shape_text(value), summarise(value))
                                            for name, value in result.params.items()])
    if args.save:
        every = f" (and every {args.checkpoint_every} steps)" if args.checkpoint_every else ""
        out.line(f"saved {len(result.params)} params to {args.save}{every}")
    if args.plot:
        out.line(f"drew the loss curve to {args.plot}")


class _Progress:
    """A rich progress bar with the current loss, redrawn at most ten times a second."""

    def __init__(self, console, total, show):
        self.show, self.total, self.console = show, total, console
        self.bar = None
        self.last = 0.0

    def __enter__(self):
        if self.show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, loss="-")
        return self

    def update(self, step, loss):
        now = time.perf_counter()
        if now - self.last >= 0.1 or step == self.total:
            self.last = now
            self.bar.update(self.task, completed=step, loss=f"{loss:.6g}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False

