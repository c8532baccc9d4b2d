"""The ``audioclf`` command: parse arguments, call library code, print. Nothing else lives here."""
from __future__ import annotations

import argparse
import json
import os
import sys


class UsageError(ValueError):
    """Options that do not fit together; printed as one line."""


def _user_errors() -> tuple:
    """Exception types whose message is meant for the user (printed as one line, exit 1)."""
    from features import AudioError, FeatureConfigError

    from .artifact import ArtifactError

    types = [AudioError, FeatureConfigError, ArtifactError, FileNotFoundError, UsageError]
    for module, name in (("train.dataset", "DataError"), ("train.fit", "TrainOptionsError"),
                         ("stream.devices", "DeviceError"), ("stream.kafka_io", "KafkaSetupError"),
                         ("stream.metrics", "MetricsPortError"),
                         ("stream.capture", "CaptureFolderError")):
        try:
            mod = __import__(module, fromlist=[name])
            types.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _checked(convert, ok, need: str):
    """An argparse type: ``convert`` the text, then refuse values ``ok`` rejects, saying what is
    needed. (String defaults, e.g. from AUDIOCLF_* variables, go through it too.)"""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {need}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text}: need {need}")
        return value
    return parse


def _thresholds(text: str) -> dict:
    """``name=number[,name=number...]`` (the names are checked where they are used)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)  # no "=": float("") fails too
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not name=number") from None
    return out


def _drift_monitor(art, args):
    """The drift monitor `listen` and `consume` run (None with --no-drift or no baseline)."""
    from stream.drift import DriftMonitor, drift_thresholds

    try:
        thresholds = drift_thresholds(args.drift_thresholds)
    except ValueError as exc:
        raise UsageError(f"--drift-thresholds: {exc}") from None
    if args.no_drift or not art.baseline:
        return None
    return DriftMonitor(art, thresholds=thresholds, capture_dir=args.capture_dir)


_count = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_positive = _checked(float, lambda v: 0 < v < float("inf"), "a number > 0")
_not_negative = _checked(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_chunk_ms = _checked(float, lambda v: 0 < v <= 30_000,
                     "a number of milliseconds > 0 and <= 30000 (consumers refuse longer chunks)")
_alpha = _checked(float, lambda v: 0 < v <= 1, "0 < alpha <= 1")
_port = _checked(int, lambda v: 0 <= v <= 65535, "a TCP port, 0-65535")
# a worker count, or joblib's -1 (all cores), -2 (all but one)...
_n_jobs = _checked(int, lambda v: v != 0, "a number of workers, or -1 for all cores")


def _writable(path: str, flag: str, example: str = "plot.png") -> str:
    """``path`` if a file can be written there; else a UsageError naming ``flag`` -- checked
    before the work whose result it is to hold (training takes minutes)."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a folder; give a file name, e.g. "
                         f"{os.path.join(path, example)}")
    probe = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(probe):  # missing folders are created on writing
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UsageError(f"{flag} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {probe} (permission denied)")
    return path


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError that names a file: the file, then what went wrong."""
    return f"{exc.filename2 or exc.filename}: {exc.strerror or exc}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _print_error(message: str) -> None:
    print(f"audioclf: error: {' '.join(str(message).split())}", file=sys.stderr)


# ---------------------------------------------------------------------------- look at audio
def _audio_inputs(paths) -> tuple[list, int]:
    """Files named on the command line, a folder (of class subfolders...) standing for every
    audio file under it; and how many folders held none (each reported in one line)."""
    from features.audio import audio_files, no_audio_files

    files, empty = [], 0
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = sorted(audio_files(path))
        if not found:
            _print_error(no_audio_files(path))
            empty += 1
        files += found
    return files, empty


def _describe_model(path: str, as_json: bool) -> None:
    """``info MODEL.joblib``: what a (verified) artifact says about itself."""
    d = model_from_arg(path).describe()
    if as_json:
        print(json.dumps(_jsonable(d)))
        return
    f = d["features"]
    what = (f"{len(d['labels'])} classes: {', '.join(d['labels'])}" if "labels" in d else
            f"regression of {d['target']['name'] or 'target'}"
            + (f" ({d['target']['unit']})" if d["target"]["unit"] else ""))
    setting = ", ".join(f"{k} {v}" for k, v in d["setting"].items())
    lines = [f"{path}: model {d['name']!r}, {d['task']}, {what}",
             f"  {d['estimator']} of {d['trees']} trees ({setting})",
             f"  features: {f['n_features']} per window of {f['window_s']:g} s every "
             f"{f['hop_s']:g} s at {f['sr']} Hz (config {f['config_digest'][:12]})",
             f"  trained {d['created']} on {d['training_files']} files "
             f"({d['training_windows']} windows), data fingerprint {d['data_fingerprint'][:12]}; "
             f"drift baseline of {d['drift_baseline_windows']} windows"]
    for part in ("validation", "test"):
        if part in d:
            figures = "  ".join(f"{k} {v:.4f}" for k, v in d[part].items()
                                if k != "n" and isinstance(v, float))
            lines.append(f"  {part}: {figures}  (n={d[part]['n']})")
    lines.append("  built with " + ", ".join(f"{k} {v}" for k, v in d["versions"].items()))
    lines.append(f"  sha256 {d['digest']}")
    print("\n".join(lines))


def cmd_info(args) -> int:
    from collections import Counter

    from features import AudioError, audio_info, level_dbfs, read_audio

    from .artifact import ArtifactError

    models = [p for p in args.files if p.lower().endswith(".joblib") or p == DEFAULT_MODEL_NAME]
    bad_models = 0
    for path in models:
        try:
            _describe_model(path, args.json)
        except ArtifactError as exc:  # the other inputs are still described
            _print_error(exc)
            bad_models += 1
    if models and len(models) == len(args.files):
        return 1 if bad_models else 0
    files, failed = _audio_inputs([p for p in args.files if p not in models])
    failed += bad_models
    rates, channels, seconds = Counter(), Counter(), 0.0
    for path in files:
        try:
            info = audio_info(path)
            y, _ = read_audio(path, sr=None)
        except AudioError as exc:
            _print_error(exc)
            failed += 1
            continue
        peak, rms = level_dbfs(y)
        print(f"{path}: {info.format}/{info.subtype}, {info.sample_rate} Hz, "
              f"{info.channels} ch, {info.duration:.3f} s, peak {peak:.1f} dBFS, "
              f"RMS {rms:.1f} dBFS")
        rates[info.sample_rate] += 1
        channels[info.channels] += 1
        seconds += info.duration
    if len(files) > 1:
        readable = sum(rates.values())
        print("; ".join([f"{len(files)} files ({len(files) - readable} unreadable), "
                         f"{seconds:.1f} s in all"]
                        + ([", ".join(f"{r} Hz x{n}" for r, n in sorted(rates.items())),
                            ", ".join(f"{c} ch x{n}" for c, n in sorted(channels.items()))]
                           if readable else [])))
    return 1 if failed else 0


def _plot_outputs(files: list, output: str | None, several: bool) -> list:
    """Where each file's PNG goes. One file: ``output`` or FILE's stem.png here. Several (or
    a folder): into the folder ``output`` (default: here), named by each file's path below the
    files' common folder, so that a/x.wav and b/x.wav do not overwrite each other."""
    if not several:
        return [_writable(output or os.path.splitext(os.path.basename(files[0]))[0] + ".png",
                          "--output")]
    folder = output or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"--output {folder}: is a file; with several inputs give a folder")
    _writable(os.path.join(folder, "x.png"), "--output")
    dirs = [os.path.dirname(os.path.abspath(f)) for f in files]
    common = os.path.commonpath(dirs) if dirs else "."
    return [os.path.join(folder, os.path.splitext(os.path.relpath(os.path.abspath(f), common))[0]
                         + ".png") for f in files]


def cmd_plot(args) -> int:
    from features import AudioError, FeatureConfig, read_audio
    from features.audio import read_audio_segment
    from features.plot import plot_audio

    if args.start < 0 or (args.seconds is not None and not args.seconds > 0):
        raise UsageError("--start needs seconds >= 0 and --seconds a duration > 0")
    cfg = FeatureConfig.at_rate(args.sr)
    files, failed = _audio_inputs(args.files)
    several = len(args.files) > 1 or os.path.isdir(args.files[0])
    segment = ""
    if args.start or args.seconds is not None:
        segment = f" from {args.start:g} s" + (f", {args.seconds:g} s" if args.seconds else "")
    for path, out in zip(files, _plot_outputs(files, args.output, several) if files else []):
        try:
            y = (read_audio_segment(path, cfg.sr, args.start, args.seconds) if segment
                 else read_audio(path, sr=cfg.sr)[0])
        except AudioError as exc:  # the other files are still plotted
            _print_error(exc)
            failed += 1
            continue
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        title = (path if several else os.path.basename(path)) + segment
        plot_audio(y, cfg, out, title=title, t0=args.start)
        print(out)
    return 1 if failed else 0


# ---------------------------------------------------------------------------- train / evaluate
def _console():
    from rich.console import Console
    return Console(stderr=False, highlight=False, soft_wrap=True)


def cmd_train(args) -> int:
    import tempfile

    from features import FeatureConfig
    from train.dataset import load_datasets
    from train.fit import TrainOptions, train_model

    from .artifact import save_model

    console = _console()
    opts = TrainOptions(n_iter=args.n_iter, cv=args.cv, n_jobs=args.jobs, seed=args.seed,
                        cache_dir=None if args.no_cache else (args.cache or ""),
                        progress=not args.json, name=args.name or _stem(args.out),
                        target_unit=args.target_unit or "",
                        families=tuple(f.strip() for f in args.families.split(",") if f.strip()),
                        max_model_mb=None if args.max_model_mb == 0 else args.max_model_mb)
    opts.check()
    _writable(args.out, "--out", "model.joblib")
    search_json = _writable(args.search_json or os.path.splitext(args.out)[0] + ".search.json",
                            "--search-json", "search.json")
    data = args.data
    if args.synthetic:
        from train.synthetic import generate_dataset
        if len(data) > 1:
            raise UsageError("--synthetic takes one DATA folder (where to generate it)")
        folder = data[0] if data else os.path.join(tempfile.gettempdir(), "audioclf-synthetic")
        data = [generate_dataset(folder, n_per_class=args.synthetic_per_class, seed=args.seed)]
        # stdout carries nothing but the one JSON object under --json
        print(f"generated synthetic dataset: {data[0]}", file=sys.stderr if args.json else None)
    if not data:
        raise FileNotFoundError("give DATA (a folder of class subfolders or a CSV), "
                                "or --synthetic")
    ds = load_datasets(data, task=args.task, group_by=args.group_by)
    cfg = FeatureConfig.at_rate(args.sr, window_seconds=args.window,
                                window_hop_seconds=args.hop)
    result = train_model(ds, cfg, opts)
    if ds.unlabelled_captures:
        result.warnings.insert(0, f"{_plural(ds.unlabelled_captures, 'captured window')} with "
                                  "no label yet left out (label them to train on them)")
    digest = save_model(result.artifact, args.out)
    with open(search_json, "w") as fh:
        json.dump(result.search, fh, indent=1)
    m = result.artifact.metrics
    if args.json:
        print(json.dumps({"model": args.out, "digest": digest, "metrics": _jsonable(m),
                          "skipped": [r for _, r in result.skipped],
                          "warnings": result.warnings, "cv_groups": result.cv_groups,
                          "padding_windows": result.padding_windows}))
        return 0
    for _, reason in result.skipped:
        console.print(f"[yellow]skipped[/] {reason}")
    for warning in result.warnings:
        console.print(f"[yellow]warning[/] {warning}")
    _print_search(console, result.search[:10])
    padding = (f", {_plural(result.padding_windows, 'silent padding window')} left out"
               if result.padding_windows else "")
    console.print(f"{ds.task}: {result.n_train_files} training files, {result.n_test_files} test "
                  f"files, {len(result.skipped)} skipped, {result.cache_hits} feature cache hits"
                  f"{padding}; cross-validation groups: {result.cv_groups}")
    _print_metrics(console, "validation (grouped CV, per file)", m["validation"], ds.task)
    if "test" in m:
        _print_metrics(console, "test split (per file)", m["test"], ds.task)
    console.print(f"saved {args.out} (sha256 {digest[:16]}...), search table {search_json}")
    return 0


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _jsonable(obj):
    import numpy as np
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN (json.dumps would write one that strict parsers refuse)
    return obj


def _print_search(console, rows):
    from rich import box
    from rich.table import Table

    # compact, so the whole table fits 80 columns (logs, pipes) and no figure is cut short
    t = Table(title="hyperparameter search (mean grouped-CV score)", box=box.SIMPLE_HEAD,
              pad_edge=False, caption="trees: fitted in the setting's last round / the "
              "setting's; leaf: min samples; cap: max leaves per tree (model-size budget); "
              "rows: training rows per fold")
    for col in ("family", "trees", "depth", "features", "leaf", "cap", "rows", "score", "std"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["family"], f"{r.get('trees', r['n_estimators'])}/{r['n_estimators']}",
                  str(r["max_depth"]), str(r["max_features"]), str(r["min_samples_leaf"]),
                  str(r.get("max_leaf_nodes") or "-"), str(r["train_rows"]),
                  f"{r['score']:.4f}", f"{r['std']:.4f}")
    console.print(t)


def _print_metrics(console, title, m, task):
    if task == "regress":
        def r2(v):
            return "n/a (the truth does not vary)" if v != v else f"{v:.4f}"
        console.print(f"{title}: MAE {m['mae']:.4g}  RMSE {m['rmse']:.4g}  R² {r2(m['r2'])}  "
                      f"(n={m['n']}; per window R² {r2(m['windows']['r2'])})")
        return
    console.print(f"{title}: accuracy {m['accuracy']:.4f}  balanced {m['balanced_accuracy']:.4f}"
                  f"  macro-F1 {m['macro_f1']:.4f}  (n={m['n']}; per window accuracy "
                  f"{m['windows']['accuracy']:.4f})")


def cmd_evaluate(args) -> int:
    import numpy as np

    from train.dataset import load_dataset
    from features.extract import level_index
    from train.evaluate import evaluate_scores, plot_confusion, plot_regression, sound_windows
    from train.extract import content_ids, extract_windows

    art = model_from_arg(args.model)
    png = _writable(args.png or _stem(args.model) + (".confusion.png" if art.is_classifier else
                                                     ".regression.png"), "--png")
    # each source's test split if it has one, else all of it
    parts = [load_dataset(d, task=art.task, require_labels=False) for d in args.data]
    items = [it for ds in parts for it in (ds.subset("test") if ds.has_split else ds.items)]
    data_name = " + ".join(args.data)
    data_title = " + ".join(os.path.basename(os.path.normpath(d)) for d in args.data)
    unknown = {}  # label -> files: a class the model cannot predict is left out, and said so
    if art.is_classifier:
        for it in items:
            if it.label not in art.labels:
                unknown[it.label] = unknown.get(it.label, 0) + 1
        items = [it for it in items if it.label in art.labels]
        if not items:
            raise UsageError(f"{data_name}: no file has a label the model knows (its classes: "
                             f"{', '.join(art.labels)}; the data's: {', '.join(sorted(unknown))})")
    win = extract_windows([it.path for it in items], art.feature_config, n_jobs=args.jobs,
                          segments=[it.segment for it in items],
                          cache_dir=None if args.no_cache else "", progress=not args.json)
    if win.X.shape[0] == 0:
        raise FileNotFoundError(f"{data_name}: no readable audio to evaluate")
    if art.is_classifier:
        truth = np.array([it.label for it in items], dtype=object)
    else:
        truth = np.array([it.target for it in items], dtype=float)
    # as in training: a clip's zero padding is no evidence of its label
    keep = sound_windows(win.X[:, level_index(art.feature_config)], win.owner)
    scores, owner = art.score(win.X[keep]), win.owner[keep]
    m = evaluate_scores(art.task, art.labels, scores, owner, truth)
    m["padding_windows"] = int((~keep).sum())
    m["skipped"] = [r for _, r in win.skipped]
    if art.is_classifier:
        m["unknown_labels"] = unknown  # files per label the model does not know (not scored)
    # a folder evaluated with the model trained on it measures fit, not new audio
    seen = art.trained_on(content_ids(win.sha256.values()))
    m["seen_in_training"] = None if seen is None else int(seen.sum())
    if art.is_classifier:
        plot_confusion(m, png, title=f"{_stem(args.model)} on {data_title}")
    else:
        from train.evaluate import file_scores
        files, per_file = file_scores(scores, owner)
        plot_regression(truth[files], per_file, png, art.target_name or "target",
                        art.target_unit or "")
    if args.json:
        print(json.dumps(_jsonable(m)))
        return 0
    console = _console()
    for reason in m["skipped"]:
        console.print(f"[yellow]skipped[/] {reason}")
    for label, n in sorted(unknown.items()):
        console.print(f"[yellow]not scored[/] {n} file(s) labelled {label}: a class the model "
                      f"does not know (its classes: {', '.join(art.labels)})")
    if m["seen_in_training"]:
        console.print(f"[yellow]warning[/] {m['seen_in_training']} of {len(win.sha256)} files "
                      "were in this model's training data: these figures measure how well it "
                      "fits them, not how it does on new audio (evaluate a test split, or "
                      "recordings it has not seen)")
    _print_metrics(console, f"{data_title} (per file)", m, art.task)
    if art.is_classifier:
        from rich.table import Table
        t = Table(title="per class (files)")
        for col in ("label", "precision", "recall", "support"):
            t.add_column(col, justify="right")
        for lab, v in m["per_class"].items():
            t.add_row(lab, f"{v['precision']:.3f}", f"{v['recall']:.3f}", str(v["support"]))
        console.print(t)
        console.print(_confusion_table(m["labels"], m["confusion"], console.width))
    console.print(f"plot: {png}")
    return 0


def _confusion_table(labels, confusion, width: int):
    """The confusion matrix as a table if it fits ``width``; else (many classes) the most
    frequent confusions, true -> predicted (the matrix is in the PNG and --json)."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    cm = Table(title="confusion (rows true, columns predicted)")
    cm.add_column("")
    for lab in labels:
        cm.add_column(lab[:8], justify="right")
    for lab, row in zip(labels, confusion):
        cm.add_row(lab, *[str(v) if v else "." for v in row])
    probe = Console(width=10_000)
    if Measurement.get(probe, probe.options, cm).maximum <= width:
        return cm
    pairs = sorted(((n, t, p) for t, row in enumerate(confusion) for p, n in enumerate(row)
                    if n and t != p), reverse=True)
    top = Table(title=f"most frequent confusions ({len(labels)} classes: the whole matrix is "
                      "in the PNG and --json)")
    for col in ("true", "predicted", "files"):
        top.add_column(col, justify="right")
    for n, t, p in pairs[:15]:
        top.add_row(labels[t], labels[p], str(n))
    if not pairs:
        top.add_row("-", "-", "0")
    return top


def cmd_predict(args) -> int:
    import csv

    from features import AudioError
    from train.predict import predict_file

    model, inputs = _model_and_inputs(args.model, args.files)
    art = model_from_arg(model)
    files, failed = _audio_inputs(inputs)
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer:
        writer.writerow(["file", "start", "end", "label", "probability", "value"])
    for path in files:
        try:
            res = predict_file(art, path, smooth=args.smooth)
        except AudioError as exc:
            _print_error(exc)
            failed += 1
            continue
        if args.json:
            res = {**res, "windows": [w.__dict__ for w in res["windows"]]}
            print(json.dumps(res))
        elif writer:
            for w in res["windows"]:
                writer.writerow([path, f"{w.start:.3f}", f"{w.end:.3f}", w.label or "",
                                 "" if w.probability is None else f"{w.probability:.4f}",
                                 "" if w.value is None else f"{w.value:.6g}"])
        else:
            summ = res["summary"]
            head = (f"{summ['label']} ({summ['probability']:.2f})" if art.is_classifier
                    else f"{summ['value']:.4g} {art.target_unit or ''}")
            windows = _plural(len(res["windows"]), "window")
            print(f"{path}: {head}  [{res['duration']:.2f} s, {windows}]")
            for w in res["windows"]:
                what = f"{w.label:<14} {w.probability:.2f}" if art.is_classifier else f"{w.value:.4g}"
                print(f"  {w.start:7.2f}-{w.end:7.2f} s  {what}")
    return 1 if failed else 0


def cmd_devices(args) -> int:
    from stream.devices import input_devices

    devices = input_devices()
    if not devices:
        print("no input devices found")
        return 1
    for d in devices:
        print(f"{d['index']:3d}  {d['name']}  ({d['channels']} in, default "
              f"{d['default_samplerate']:.0f} Hz)")
    return 0


def cmd_listen(args) -> int:
    from stream.engine import Engine
    from stream.listen import run
    from stream.sources import FileSource, MicSource

    _single_threaded_math()
    art = model_from_arg(args.model)
    if args.window or args.hop:
        cfg = art.feature_config
        if (args.window or cfg.window_seconds) != cfg.window_seconds or \
                (args.hop or cfg.window_hop_seconds) != cfg.window_hop_seconds:
            raise UsageError(f"the model was trained with --window {cfg.window_seconds} --hop "
                             f"{cfg.window_hop_seconds}; windows are part of its features")
    engine = Engine(art, smooth=args.smooth, ema=args.ema, keep_audio=bool(args.capture_dir))
    sr = art.feature_config.sr
    if args.demo:
        from train.synthetic import demo_sequence
        y, _ = demo_sequence(sr=sr)
        source = FileSource(None, sr, realtime=not args.fast, samples=y)
    elif args.file:
        source = FileSource(args.file, sr, realtime=not args.fast)
    else:
        source = MicSource(args.device, args.rate, args.channels)
    monitor = _drift_monitor(art, args)
    if monitor is not None:
        monitor.start()
    metrics_server = None
    if args.metrics_port:
        from stream.metrics import serve_metrics
        metrics_server = serve_metrics(args.metrics_port, engine=engine, monitors=[monitor])
    try:
        summary = run(engine, source, emit_json=args.json, max_seconds=args.seconds,
                      monitor=monitor)
    finally:
        if monitor is not None:
            monitor.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
    if monitor is not None:
        summary["drift"] = monitor.status_dict()
    print(json.dumps({"summary": summary}) if args.json else
          "summary: " + ", ".join(f"{k} {v}" for k, v in summary.items()
                                  if not isinstance(v, dict)), file=sys.stderr)
    return 0


def _single_threaded_math():
    """Streaming work is many small matrix products: BLAS threads only contend for the cores
    (measured: 1.36 cores for the same throughput as 0.83 with one thread)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def cmd_consume(args) -> int:
    from stream.consume import ConsumeService
    from stream.kafka_io import client_options

    from .memory import settle_gc

    _single_threaded_math()
    if not args.topic:
        raise UsageError("give at least one --topic (or AUDIOCLF_TOPIC)")
    if not args.out_topic:
        raise UsageError("give --out-topic (or AUDIOCLF_OUT_TOPIC)")
    for flag, topic in (("--out-topic", args.out_topic), ("--dlq-topic", args.dlq_topic),
                        ("--alerts-topic", args.alerts_topic)):
        if topic in args.topic:  # what it writes would come back as audio, and again...
            raise UsageError(f"{flag} {topic} is also an input --topic: the consumer would "
                             "read its own output back as audio")
    art = model_from_arg(args.model)
    monitor = _drift_monitor(art, args)
    service = ConsumeService(art, client_options(args), args.topic, args.group, args.out_topic,
                             args.dlq_topic, args.alerts_topic, idle_timeout=args.idle_timeout,
                             status_every=args.status_every, smooth=args.smooth,
                             monitor=monitor, keep_audio=bool(args.capture_dir),
                             commit_interval=args.commit_interval)
    if monitor is not None:
        if args.alerts_topic:
            monitor.on_change = service.publish_alert
        monitor.start()
    service.install_signal_handlers()
    metrics_server = None
    if args.metrics_port:
        from stream.metrics import serve_metrics
        metrics_server = serve_metrics(args.metrics_port, engine=service.engine,
                                       monitors=[monitor], consume=service)
    settle_gc()  # the model and the monitor are loaded: see audioclf/memory.py
    try:
        summary = service.run(max_seconds=args.seconds)
    finally:
        if monitor is not None:
            monitor.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
    print(json.dumps({"summary": {k: v for k, v in summary.items() if k != "event"}}),
          file=sys.stderr)
    return 0


def cmd_produce(args) -> int:
    from stream.kafka_io import client_options
    from stream.produce import produce_files, produce_mic

    opts = client_options(args)
    if args.mic:
        res = produce_mic(opts, args.topic, args.stream_id, args.device, args.rate,
                          args.chunk_ms, args.dtype, args.seconds)
    else:
        if not args.files:
            raise UsageError("give FILE... or --mic")
        res = produce_files(opts, args.topic, args.stream_id, args.files, args.chunk_ms,
                            args.dtype, args.realtime, args.wav)
    print(json.dumps(res))
    return 0


def cmd_drift_report(args) -> int:
    from stream.drift_report import drift_report

    model, sources = _model_and_inputs(args.model, args.sources)
    art = model_from_arg(model)
    png = _writable(args.png or _stem(model or DEFAULT_MODEL_NAME) + ".drift.png", "--png")
    res = drift_report(art, sources, png=png, top=args.top)
    if args.json:
        print(json.dumps(_jsonable(res)))
        return 0
    from rich.table import Table
    console = _console()
    for note in res["skipped"]:
        console.print(f"[yellow]skipped[/] {note}")
    for note in res["warnings"]:
        console.print(f"[yellow]warning[/] {note}")
    console.print(f"{res['n']} windows: level {res['level']}, drift share {res['drift_share']:.2f}"
                  f" (features with PSI > 0.25), warn share {res['warn_share']:.2f}"
                  + (f", prediction PSI {res['prediction_psi']}" if "prediction_psi" in res else ""))
    t = Table(title="most drifted features")
    for col in ("feature", "PSI", "KS", "shift (sd)", "baseline mean", "recent mean"):
        t.add_column(col, justify="right")
    for f in res["features"]:
        t.add_row(f["name"], f"{f['psi']:.3f}", f"{f['ks']:.3f}", f"{f['shift_sd']:.2f}",
                  f"{f['baseline_mean']:.4g}", f"{f['recent_mean']:.4g}")
    console.print(t)
    console.print(f"plot: {png}")
    return 0


def default_model_path() -> str:
    from models import default_model_path as path
    return path()


DRIFT_THRESHOLDS_HELP = ("change drift thresholds, e.g. share_drift=0.4,k_enter=3 (names and "
                         "defaults: stream/drift.py DriftThresholds, README 'Drift')")
DEFAULT_MODEL_NAME = "default"
MODEL_HELP = "model artifact, or 'default' for the shipped model"


def _model_and_inputs(model: str | None, inputs) -> tuple[str | None, list]:
    """An optional MODEL before FILE|FOLDER arguments: argparse hands MODEL the first of them
    when no model is named (`predict a.wav b.wav`); an audio file or a folder is an input."""
    from features.audio import AUDIO_EXTENSIONS, UNDECODABLE_EXTENSIONS

    audio = AUDIO_EXTENSIONS + UNDECODABLE_EXTENSIONS
    if model and (model.lower().endswith(audio) or os.path.isdir(model)):
        return None, [model, *inputs]
    return model, list(inputs)


def model_from_arg(name: str | None):
    """The model a MODEL argument names: an artifact file, or the shipped default model when
    none is given or the name is ``default`` (and no file of that name exists)."""
    from .artifact import load_model

    if name is None or (name == DEFAULT_MODEL_NAME and not os.path.exists(name)):
        return load_default_model()
    return load_model(name)


def load_default_model():
    """The shipped model; if this scikit-learn cannot use it, the same recipe retrained once
    into the user cache (the generator is seeded, so it is the same model up to the library)."""
    import sklearn

    from .artifact import ArtifactError, load_model, save_model

    from models import DEFAULT_SHA256

    try:
        return load_model(default_model_path(), pinned_sha256=DEFAULT_SHA256)
    except ArtifactError as exc:
        if "scikit-learn" not in str(exc):
            raise
    cached = os.path.join(os.path.expanduser("~"), ".cache", "audioclf", "models",
                          f"default-sklearn{sklearn.__version__}.joblib")
    if os.path.exists(cached):
        return load_model(cached)
    import tempfile

    from features import FeatureConfig
    from train.dataset import load_dataset
    from train.fit import TrainOptions, train_model
    from train.synthetic import generate_dataset

    print(f"audioclf: the shipped default model needs another scikit-learn; training it once "
          f"for {sklearn.__version__} into {cached} (seeded, ~30 s)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate_dataset(tmp, n_per_class=100, seed=0)
        result = train_model(load_dataset(manifest), FeatureConfig(),
                             TrainOptions(n_iter=6, seed=0, cache_dir=None, progress=False,
                                          name="default"))
    save_model(result.artifact, cached)
    return load_model(cached)


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audioclf", description=(
        "Streaming real-time audio classification. Typical path: info/plot -> train -> "
        "evaluate -> predict -> listen/consume -> drift-report."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("info", help="format, rate, channels, duration, peak/RMS dBFS of files; "
                                    "what a model artifact holds")
    s.add_argument("files", nargs="+", metavar="FILE|FOLDER|MODEL",
                   help="audio files, or folders: every audio file in them, and a summary; "
                        "a MODEL.joblib (or 'default'): its classes, setting, features, "
                        "metrics, versions and digest (checked before it is unpickled)")
    s.add_argument("--json", action="store_true", help="models: one JSON object each")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("plot", help="waveform above a log-mel spectrogram, as PNG")
    s.add_argument("files", nargs="+", metavar="FILE|FOLDER",
                   help="audio files, or folders: every audio file in them")
    s.add_argument("-o", "--output", metavar="PNG|FOLDER",
                   help="one file: the PNG (default: FILE's stem.png); several or a folder: "
                        "the folder to write them in, named by their paths (default: here)")
    s.add_argument("--sr", type=int, default=16_000, help="analysis rate in Hz (default 16000)")
    s.add_argument("--start", type=float, default=0.0, metavar="S",
                   help="plot from S seconds into each file (default 0)")
    s.add_argument("--seconds", type=float, default=None, metavar="D",
                   help="plot D seconds (default: to the end); only that part is held")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("train", help="train a forest from a folder/CSV of recordings")
    s.add_argument("data", nargs="*", metavar="DATA",
                   help="folder with one subfolder per class, or CSV manifest; several are "
                        "trained on together (e.g. the original data and a labelled capture "
                        "folder's manifest.csv)")
    s.add_argument("--out", required=True, metavar="MODEL", help="output .joblib path")
    s.add_argument("--task", choices=["classify", "regress"], default=None,
                   help="default: regress if the CSV has a 'target' column, else classify")
    s.add_argument("--sr", type=int, default=16_000, help="sample rate in Hz (default 16000)")
    s.add_argument("--window", type=float, default=1.0, help="window seconds (default 1.0)")
    s.add_argument("--hop", type=float, default=0.25, help="window hop seconds (default 0.25)")
    s.add_argument("--n-iter", type=int, default=12,
                   help="settings tried by the search (successive halving, default 12)")
    s.add_argument("--cv", type=int, default=4, help="grouped CV folds (default 4)")
    s.add_argument("--group-by", metavar="REGEX",
                   help="take each file's CV group (speaker, source) from its path relative to "
                        "DATA: the first (...) group of REGEX, else the whole match; e.g. "
                        "'^[^/]+/([^_]+)_' for DATA/<class>/<speaker>_<n>.wav. Beside a CSV with a "
                        "group column (a capture manifest) it groups only the other sources. "
                        "Default: the CSV's group column, else one group per file")
    s.add_argument("--families", default="rf,et", help="forest families: rf, et or rf,et")
    s.add_argument("--jobs", type=_n_jobs, default=-1,
                   help="parallel workers (default all cores)")
    s.add_argument("--max-model-mb", type=float, default=100.0, metavar="MB",
                   help="cap each tree's leaves so the forest stays within MB (default 100; "
                        "0: no cap)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cache", metavar="DIR", help="feature cache folder")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    s.add_argument("--name", help="model name (default: the output file's stem)")
    s.add_argument("--target-unit", help="unit of the regression target, e.g. dB")
    s.add_argument("--search-json", metavar="PATH", help="where to write the search table")
    s.add_argument("--synthetic", action="store_true",
                   help="generate the seeded synthetic dataset (into DATA or a temp folder)")
    s.add_argument("--synthetic-per-class", type=_count, default=40)
    s.add_argument("--json", action="store_true", help="print one JSON summary")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="metrics of a model on a labelled folder/CSV")
    s.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    s.add_argument("data", nargs="+", metavar="DATA",
                   help="folder(s)/CSV(s): each one's test split if it has one, else all of it")
    s.add_argument("--json", action="store_true")
    s.add_argument("--png", help="plot path (confusion matrix or predicted-vs-true)")
    s.add_argument("--jobs", type=_n_jobs, default=-1)
    s.add_argument("--no-cache", action="store_true")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("predict", help="per-window timeline and summary label for files")
    s.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help=MODEL_HELP + "; the shipped model when omitted")
    s.add_argument("files", nargs="+", metavar="FILE|FOLDER",
                   help="audio files, or folders: every audio file in them")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per file")
    out.add_argument("--csv", action="store_true", help="one CSV row per window")
    s.add_argument("--smooth", type=_count, default=1, help="moving average over N windows")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("listen", help="live classification from the microphone (or a file)")
    s.add_argument("--model", help=MODEL_HELP + " (the default)")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--device", help="input device index or name (see `audioclf devices`)")
    src.add_argument("--file", help="stream this file through the live engine instead")
    src.add_argument("--demo", action="store_true",
                     help="stream a generated demo soundtrack (no microphone needed)")
    s.add_argument("--rate", type=_count, help="device sample rate (default: the device's)")
    s.add_argument("--channels", type=_count, default=1,
                   help="device channels to open (mixed to mono; default 1)")
    s.add_argument("--window", type=_positive, help="must match the model's window (seconds)")
    s.add_argument("--hop", type=_positive, help="must match the model's hop (seconds)")
    s.add_argument("--smooth", type=_count, default=1, help="moving average over N windows")
    s.add_argument("--ema", type=_alpha, help="exponential smoothing factor instead (0-1]")
    s.add_argument("--fast", action="store_true", help="--file/--demo as fast as possible")
    s.add_argument("--seconds", type=_positive, help="stop after this many seconds")
    s.add_argument("--json", action="store_true", help="one JSON line per prediction")
    s.add_argument("--no-drift", action="store_true", help="no drift monitor")
    s.add_argument("--drift-thresholds", type=_thresholds, metavar="NAME=X[,NAME=X]",
                   help=DRIFT_THRESHOLDS_HELP)
    s.add_argument("--capture-dir", help="save drifted windows here for retraining")
    s.add_argument("--metrics-port", type=_port, help="serve Prometheus /metrics on this port")
    s.set_defaults(func=cmd_listen)

    from stream.kafka_io import add_connection_args, env, env_flag

    s = sub.add_parser("consume", help="classify audio from Kafka topics as a consumer group")
    add_connection_args(s)
    s.add_argument("--topic", action="append",
                   default=env("topic").split(",") if env("topic") else None,
                   help="audio topic (repeatable; env AUDIOCLF_TOPIC, comma-separated)")
    s.add_argument("--group", default=env("group", "audioclf"), help="consumer group id")
    s.add_argument("--out-topic", default=env("out_topic"), help="predictions topic")
    s.add_argument("--dlq-topic", default=env("dlq_topic"), help="dead-letter topic")
    s.add_argument("--alerts-topic", default=env("alerts_topic"), help="drift alerts topic")
    s.add_argument("--model", default=env("model"), help=MODEL_HELP + " (the default)")
    s.add_argument("--smooth", type=_count, default=env("smooth", "1"),
                   help="moving average over N windows (env AUDIOCLF_SMOOTH)")
    s.add_argument("--idle-timeout", type=_positive, default=env("idle_timeout", "60"),
                   help="seconds before a silent stream's state is dropped "
                        "(env AUDIOCLF_IDLE_TIMEOUT)")
    s.add_argument("--commit-interval", type=_not_negative,
                   default=env("commit_interval", "1"),
                   help="seconds between offset commits of acknowledged predictions; 0: after "
                        "every batch. Longer: fewer broker writes, more re-read after a crash "
                        "(env AUDIOCLF_COMMIT_INTERVAL)")
    s.add_argument("--status-every", type=_positive, default=env("status_every", "5"),
                   help="seconds between status lines/panel updates (env AUDIOCLF_STATUS_EVERY)")
    s.add_argument("--seconds", type=_positive, default=env("seconds"),
                   help="stop after this many seconds (env AUDIOCLF_SECONDS)")
    s.add_argument("--no-drift", action="store_true", default=env_flag("no_drift"),
                   help="no drift monitor (env AUDIOCLF_NO_DRIFT=1)")
    s.add_argument("--drift-thresholds", type=_thresholds, metavar="NAME=X[,NAME=X]",
                   default=env("drift_thresholds"),
                   help=DRIFT_THRESHOLDS_HELP + " (env AUDIOCLF_DRIFT_THRESHOLDS)")
    s.add_argument("--capture-dir", default=env("capture_dir"),
                   help="save drifted windows here for retraining (env AUDIOCLF_CAPTURE_DIR)")
    s.add_argument("--metrics-port", type=_port, default=env("metrics_port"),
                   help="serve Prometheus /metrics on this port (env AUDIOCLF_METRICS_PORT)")
    s.set_defaults(func=cmd_consume)

    s = sub.add_parser("produce", help="publish audio files or the microphone to Kafka")
    add_connection_args(s)
    s.add_argument("files", nargs="*", metavar="FILE")
    s.add_argument("--mic", action="store_true", help="publish the microphone instead")
    s.add_argument("--device", help="--mic: input device index or name")
    s.add_argument("--rate", type=_count,
                   help="--mic: device sample rate (default: the device's); files are sent "
                        "at the first file's rate")
    s.add_argument("--seconds", type=_positive, help="--mic: stop after this long")
    s.add_argument("--topic", default=env("topic", "audio"),
                   help="audio topic (default: audio; env AUDIOCLF_TOPIC)")
    s.add_argument("--stream-id", required=True,
                   help="the messages' key: one device or recording, kept in order")
    # consumers dead-letter chunks over stream.wire.MAX_CHUNK_SECONDS
    s.add_argument("--chunk-ms", type=_chunk_ms, default=100.0,
                   help="audio per message in milliseconds (default 100)")
    s.add_argument("--dtype", choices=["int16", "int32", "float32"], default="int16",
                   help="PCM sample type on the wire (default int16)")
    s.add_argument("--wav", action="store_true", help="send WAV-encoded chunks")
    s.add_argument("--realtime", action="store_true", help="pace chunks at real time")
    s.set_defaults(func=cmd_produce)

    s = sub.add_parser("drift-report", help="per-feature drift of captures or files vs training")
    s.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help=MODEL_HELP + "; the shipped model when omitted")
    s.add_argument("sources", nargs="+", metavar="CAPTURE_DIR|FOLDER|FILE",
                   help="a capture folder (listen/consume --capture-dir), a folder of "
                        "recordings (every audio file under it) or audio files")
    s.add_argument("--png", help="plot path (default: MODEL stem (or default) + .drift.png)")
    s.add_argument("--top", type=_count, default=15)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_drift_report)

    s = sub.add_parser("devices", help="list audio input devices")
    s.set_defaults(func=cmd_devices)

    for register in _REGISTRARS:
        register(sub)
    return p


_REGISTRARS: list = []  # filled by the command modules below, in help order


def main(argv=None) -> int:
    try:
        parser = build_parser()
    except _user_errors() as exc:  # e.g. an AUDIOCLF_* default that means nothing
        _print_error(exc)
        return 2
    args = parser.parse_args(argv)
    from .memory import keep_freed_memory

    keep_freed_memory()  # block-wise numpy work: see audioclf/memory.py
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of a pipe went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 -- the one place that turns errors into messages
        if os.environ.get("AUDIOCLF_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.filename:  # e.g. an output the disk refused
            _print_error(_os_error_line(exc))
        elif isinstance(exc, _user_errors()):
            _print_error(exc)
        else:
            _print_error(f"internal error: {type(exc).__name__}: {exc} "
                         "(set AUDIOCLF_DEBUG=1 for a traceback)")
        return 1
