FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libportaudio2 libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY audioclf audioclf
COPY features features
COPY train train
COPY stream stream
COPY models models
RUN pip install --no-cache-dir .
ENTRYPOINT ["audioclf"]
CMD ["--help"]
