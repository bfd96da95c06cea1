"""``python -m services.trainer
train|enqueue|worker|ensure|serve|evaluate[-chain|-direction|-vol-chain]|list|rollback``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from shared.bus.lifecycle import command_settings, prepare
from shared.config import Settings


def _settings() -> Settings:
    """The environment's settings; beside ``make run``, as the trainer's Redis user."""
    return command_settings("trainer")


def _train(args: argparse.Namespace) -> int:
    from services.trainer.pipeline import run_training
    from services.trainer.profiles import FAST, FULL
    from services.trainer.progress import Bar

    bar = Bar()
    try:
        results = run_training(
            _settings(), end=args.end, profile=FAST if args.fast else FULL, progress=bar
        )
    finally:
        bar.close()
    for r in results:
        print(f"{r.name:20s} {r.version}  {'new' if r.created else 'unchanged'}  {r.path}")
    return 0


def _enqueue(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.trainer.jobs import enqueue_training

    job = enqueue_training(_settings(), end=args.end, profile="fast" if args.fast else "full")
    print(f"enqueued job {job.id}")
    if args.no_wait:
        return 0
    with tqdm(total=1, desc="training job", unit="step") as bar:
        while not job.is_finished and not job.is_failed:
            time.sleep(0.5)
            job.refresh()
            bar.total = job.meta.get("total", bar.total)
            bar.n = job.meta.get("done", 0)
            bar.set_postfix_str(f"{job.get_status()}: {job.meta.get('step', '')}")
            bar.refresh()
    if job.is_failed:
        print(f"job {job.id} failed", file=sys.stderr)
        return 1
    print(json.dumps(job.return_value(), indent=1))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from services.trainer.worker import run_worker

    run_worker(_settings(), burst=args.burst, schedule=not args.no_schedule)
    return 0


def _ensure(args: argparse.Namespace) -> int:
    from services.trainer.pipeline import ensure_models

    print("trained:", ", ".join(ensure_models(_settings())) or "nothing (all present)")
    return 0


class StopDuringTraining(BaseException):  # not Exception: no handler may swallow it
    """A stop signal arrived while ``serve`` was training: nothing half-written is published
    (a registry version appears whole or not at all)."""


def _raise_stop(signum: int, frame: object) -> None:
    raise StopDuringTraining(signal.Signals(signum).name)


def _serve(args: argparse.Namespace) -> int:
    """``ensure`` then ``worker`` in one process, the container's PID 1: a stop signal ends it
    promptly in either phase (a shell around the two would ignore SIGTERM as PID 1)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_stop)
    try:
        _ensure(args)
    except StopDuringTraining as exc:
        print(f"stopped by {exc} while training; the registry keeps what was published")
        return 0
    from services.trainer.worker import remember_stop_signals, run_worker

    early_stops = remember_stop_signals()  # honoured once the rq worker has its handlers
    run_worker(_settings(), early_stops=early_stops)
    return 0


def _list(args: argparse.Namespace) -> int:
    from shared.models import registry
    from shared.models.loading import MODEL_NAMES

    for name in MODEL_NAMES:
        for v in registry.list_versions(_settings().model_dir, name):
            mark = "CURRENT" if v["current"] else ""
            print(f"{name:20s} {v['version']}  {v['created_at']}  {mark}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from shared.models import registry

    print(registry.rollback(_settings().model_dir, args.name, args.to))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from services.trainer.evaluation import run_evaluation

    run_evaluation(
        [Path(p) for p in args.nifty],
        [Path(p) for p in args.vix],
        args.start,
        Path(args.out),
        retrain_every=args.retrain_every,
        fast=args.fast,
        end=args.end,
        registry_dir=Path(args.registry) if args.registry else None,
    )
    return 0


def _evaluate_chain(args: argparse.Namespace) -> int:
    from services.trainer.chain_evaluation import run_chain_evaluation

    result = run_chain_evaluation([Path(p) for p in args.runs], Path(args.chain))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result, indent=1, default=float))
    return 0


def _evaluate_direction(args: argparse.Namespace) -> int:
    from services.trainer.direction_candidates import run_direction_candidates

    result = run_direction_candidates(
        [Path(p) for p in args.nifty],
        [Path(p) for p in args.vix],
        [Path(p) for p in args.runs],
        Path(args.chain),
        Path(args.participants),
        Path(args.futures),
        Path(args.out),
    )
    (Path(args.out) / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result["candidates"], indent=1, default=float))
    return 0


def _evaluate_vol_chain(args: argparse.Namespace) -> int:
    from services.trainer.vol_chain_gate import run_vol_chain

    result = run_vol_chain(
        [Path(p) for p in args.runs],
        Path(args.chain),
        Path(args.participants),
        Path(args.futures),
        args.end,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps({"passes": result["passes"]}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train every model inline and publish")
    p.add_argument("--end", help="last session used (default: settings.train_end or all)")
    p.add_argument("--fast", action="store_true", help="tiny epochs/trees (tests, smoke runs)")
    p.set_defaults(func=_train)
    p = sub.add_parser("enqueue", help="enqueue a training job and follow its progress")
    p.add_argument("--end")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=_enqueue)
    p = sub.add_parser("worker", help="rq worker on the training queue + weekly schedule")
    p.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    p.add_argument("--no-schedule", action="store_true")
    p.set_defaults(func=_worker)
    p = sub.add_parser("ensure", help="train only the models missing from the registry")
    p.set_defaults(func=_ensure)
    p = sub.add_parser("serve", help="ensure, then the worker: the trainer container's command")
    p.set_defaults(func=_serve)
    p = sub.add_parser("list", help="registry versions")
    p.set_defaults(func=_list)
    p = sub.add_parser("rollback", help="point CURRENT at the previous (or given) version")
    p.add_argument("name")
    p.add_argument("--to")
    p.set_defaults(func=_rollback)
    p = sub.add_parser("evaluate", help="walk-forward evaluation")
    p.add_argument("--nifty", required=True, nargs="+", help="daily CSVs, in any order")
    p.add_argument("--vix", required=True, nargs="+", help="daily CSVs, in any order")
    p.add_argument("--start", default="2019-01-01")
    p.add_argument("--end")
    p.add_argument("--out", required=True)
    p.add_argument("--retrain-every", type=int, default=126)
    p.add_argument("--fast", action="store_true")
    p.add_argument(
        "--registry",
        help="keep each fold's models here, dated by the sessions they serve "
        "(engines replay them with AEGIS_WALK_FORWARD_MODEL_DIR)",
    )
    p.set_defaults(func=_evaluate)
    p = sub.add_parser(
        "evaluate-chain", help="score evaluation runs against the straddle where the chain exists"
    )
    p.add_argument("--runs", required=True, nargs="+", help="evaluate --out folders, oldest first")
    p.add_argument("--chain", required=True, help="daily chain history CSV")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_evaluate_chain)
    p = sub.add_parser(
        "evaluate-direction",
        help="direction candidates walk-forward on the folds of evaluation runs, beside "
        "climatology and the current model",
    )
    p.add_argument("--nifty", required=True, nargs="+", help="daily CSVs, in any order")
    p.add_argument("--vix", required=True, nargs="+", help="daily CSVs, in any order")
    p.add_argument("--runs", required=True, nargs="+", help="evaluate --out folders, oldest first")
    p.add_argument("--chain", required=True, help="daily chain history CSV")
    p.add_argument("--participants", required=True, help="participant-wise OI history")
    p.add_argument("--futures", required=True, help="near-month futures daily CSV")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_evaluate_direction)
    p = sub.add_parser(
        "evaluate-vol-chain",
        help="chain inputs as corrections of the volatility signals, walk-forward on the chain "
        "days, beside the VIX and straddle baselines, under the gate of docs/MODELS.md",
    )
    p.add_argument("--runs", required=True, nargs="+", help="evaluate --out folders, oldest first")
    p.add_argument("--chain", required=True, help="daily chain history CSV")
    p.add_argument("--participants", required=True, help="participant-wise OI history")
    p.add_argument("--futures", required=True, help="near-month futures daily CSV")
    p.add_argument("--end", help="last session scored (default: all)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_evaluate_vol_chain)
    args = parser.parse_args(argv)
    prepare()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
