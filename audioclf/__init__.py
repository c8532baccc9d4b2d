"""audioclf: streaming real-time audio classification.

Packages: ``features`` (audio in, one feature path), ``train`` (offline: data, search,
evaluation), ``stream`` (live engine: mic, Kafka, drift), and here the model artifact shared by
both and the thin CLI.
"""
__version__ = "0.1.0"
