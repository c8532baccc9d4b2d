"""The ``audioclf`` command: parse arguments, call library code, print. Nothing else lives here."""
from __future__ import annotations

import argparse
import json
import os
import sys


def _user_errors() -> tuple:
    """Exception types whose message is meant for the user (printed as one line, exit 1)."""
    from features import AudioError, FeatureConfigError

    from .artifact import ArtifactError

    types = [AudioError, FeatureConfigError, ArtifactError, FileNotFoundError]
    for module, name in (("train.dataset", "DataError"), ("stream.devices", "DeviceError"),
                         ("stream.kafka_io", "KafkaSetupError")):
        try:
            mod = __import__(module, fromlist=[name])
            types.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _print_error(message: str) -> None:
    print(f"audioclf: error: {' '.join(str(message).split())}", file=sys.stderr)


# ---------------------------------------------------------------------------- look at audio
def cmd_info(args) -> int:
    from features import AudioError, audio_info, level_dbfs, read_audio

    failed = 0
    for path in args.files:
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
    return 1 if failed else 0


def cmd_plot(args) -> int:
    from features import FeatureConfig, read_audio
    from features.plot import plot_audio

    cfg = FeatureConfig(sr=args.sr)
    y, _ = read_audio(args.file, sr=cfg.sr)
    out = args.output or os.path.splitext(os.path.basename(args.file))[0] + ".png"
    plot_audio(y, cfg, out, title=os.path.basename(args.file))
    print(out)
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audioclf", description=(
        "Streaming real-time audio classification. Typical path: info/plot -> train -> "
        "evaluate -> predict -> listen/consume -> drift-report."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("info", help="format, rate, channels, duration, peak/RMS dBFS of files")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("plot", help="waveform above a log-mel spectrogram, as PNG")
    s.add_argument("file", metavar="FILE")
    s.add_argument("-o", "--output", metavar="PNG", help="output path (default: FILE's stem.png)")
    s.add_argument("--sr", type=int, default=16_000, help="analysis rate in Hz (default 16000)")
    s.set_defaults(func=cmd_plot)

    for register in _REGISTRARS:
        register(sub)
    return p


_REGISTRARS: list = []  # filled by the command modules below, in help order


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        if isinstance(exc, _user_errors()):
            _print_error(exc)
        else:
            _print_error(f"internal error: {type(exc).__name__}: {exc} "
                         "(set AUDIOCLF_DEBUG=1 for a traceback)")
        return 1
