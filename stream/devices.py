"""sounddevice, imported lazily, with one-line errors for everything that goes wrong with audio I/O."""
from __future__ import annotations


class DeviceError(RuntimeError):
    """No PortAudio, no device, a bad setting, or a device that went away."""


def import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library not found
        raise DeviceError(f"PortAudio is not installed ({exc}); install the system package "
                          "libportaudio2 (Debian/Ubuntu: apt-get install libportaudio2)") from None
    return sd


def input_devices() -> list[dict]:
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001 -- PortAudio reports host problems here
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    return [{"index": i, "name": d["name"], "channels": d["max_input_channels"],
             "default_samplerate": d["default_samplerate"]}
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def resolve_input(device, samplerate: int | None, channels: int) -> tuple[object, int]:
    """Check ``device`` can record ``channels`` at ``samplerate``; returns (device, rate)."""
    sd = import_sounddevice()
    if device is not None and str(device).isdigit():
        device = int(device)
    try:
        info = sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        if not input_devices():
            raise DeviceError("no audio input device found (is a microphone connected? "
                              "`audioclf devices` lists them)") from None
        raise DeviceError(f"input device {device!r}: {exc} (`audioclf devices` lists them)"
                          ) from None
    rate = int(samplerate or info["default_samplerate"])
    try:
        sd.check_input_settings(device=device, channels=channels, samplerate=rate,
                                dtype="float32")
    except Exception as exc:  # noqa: BLE001
        raise DeviceError(f"input device {info['name']!r} cannot record {channels} channel(s) "
                          f"at {rate} Hz: {exc}") from None
    return device, rate
