"""``hessian-rank train``: train a network and measure rank H_L, H_o, H_F at checkpoints."""

from __future__ import annotations

import argparse

from ..config import DEFAULT_CHECKPOINTS, OPTIMIZERS, TRAIN_DEFAULTS
from .options import add_execution_options, add_run_options, config_from_args, refuse_processes

HELP = "train a network and measure rank H_L, H_o, H_F at checkpoints"
DESCRIPTION = (
    "Train the network (optax sgd, momentum or adam on the mean loss of a batch of the same n samples whose "
    "Hessians are measured) and store, at each checkpoint step, the training loss, the gradient norm, the ranks "
    "of H_L, H_o, H_F with tolerance and gap, the predictions and their kinds, and the largest |eigenvalue| of "
    "each. Rows land in <out>/store/training/<loss>/<dataset>/<d>x…x<K>/ with the parameters of each checkpoint "
    "(npz, one array per leaf); the same command again resumes from the last stored checkpoint."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank train``: every ``run`` option plus the training."""
    add_run_options(parser)
    d = TRAIN_DEFAULTS
    g = parser.add_argument_group("training")
    g.add_argument("--optimizer", default=d["optimizer"],
                   help=f"one of {', '.join(OPTIMIZERS)} (default {d['optimizer']})")
    g.add_argument("--lr", type=float, default=d["lr"], help=f"learning rate (default {d['lr']})")
    g.add_argument("--steps", type=int, default=d["steps"], help=f"number of training steps (default {d['steps']})")
    g.add_argument("--train-batch", "--train_batch", dest="train_batch", type=int, default=d["train_batch"],
                   help="samples per step, reshuffled every epoch with --seed (default: all n, full batch)")
    g.add_argument("--checkpoints", default=None,
                   help=f"steps at which to measure, e.g. 0,10,100 (default: 0 and about {DEFAULT_CHECKPOINTS} "
                        "log-spaced steps up to --steps)")
    g.add_argument("--out", default="results", help="root of the result store (default results)")
    add_execution_options(parser, processes=False)
    parser.set_defaults(handler=_cmd_train)


def _cmd_train(args) -> int:
    from ..training import TrainConfig, format_training, parse_checkpoints, run_training
    from .progress import Progress

    refuse_processes(args, "training runs as one process (it resumes from the checkpoints of its own result "
                           "store); use --devices for several devices")
    cfg = config_from_args(args)
    tc = TrainConfig(optimizer=args.optimizer, lr=args.lr, steps=args.steps, train_batch=args.train_batch)
    tc.validate()
    if args.checkpoints is not None:
        tc = TrainConfig(optimizer=tc.optimizer, lr=tc.lr, steps=tc.steps, train_batch=tc.train_batch,
                         checkpoints=parse_checkpoints(args.checkpoints, steps=tc.steps))
    outcome = run_training(cfg, tc, out=args.out, blocks=args.blocks, threads=args.threads, devices=args.devices,
                           progress=lambda total: Progress(total, desc="training"))
    print(format_training(outcome))
    return 0
