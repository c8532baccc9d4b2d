"""Live: ring buffer, stateful resampling, the streaming engine, microphone/file/Kafka
sources, drift monitoring, capture and metrics.

Uses ``features`` and the model artifact (``audioclf.artifact``); never ``train``.
"""
