# One image for all four services; the command picks the service:
#   docker run IMAGE gateway | services.recognizer | services.verifier | services.challenge
# Stubs are generated at build time; only runtime dependencies are installed (no torch).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml ./
COPY proto ./proto
COPY hwotp ./hwotp
COPY services ./services
COPY gateway ./gateway
RUN pip install --no-cache-dir grpcio-tools==1.85.1 \
 && python -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. proto/hwotp/v1/*.proto \
      proto/hwotp/internal/v1/*.proto \
 && touch hwotp/v1/__init__.py hwotp/internal/__init__.py hwotp/internal/v1/__init__.py \
 && mkdir -p training local \
 && pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin hwotp
COPY --from=build /install /usr/local
COPY models/models.json models/recognizer.onnx models/online-recognizer.onnx models/verifier.onnx models/online-verifier.onnx \
     models/baseline-verifier.onnx models/cohort.npz models/cohort-strokes.npz models/cohort-online.npz \
     models/signature.json /app/models/
ENV HWOTP_MODELS_DIR=/app/models \
    HWOTP_HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001
# tini is PID 1: it forwards SIGTERM to Python, which drains and stops.
ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m"]
CMD ["gateway"]
