# Multi-stage build of Herald on Debian 12: build with the -dev packages, run with only the runtime libraries.
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libuv1-dev libhiredis-dev nlohmann-json3-dev libssl-dev prometheus-cpp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY protocol protocol
COPY backplane backplane
COPY broker broker
COPY sdk/js sdk/js
COPY demo demo
COPY tests tests
RUN cmake --preset release -DHERALD_BUILD_TESTS=OFF && cmake --build --preset release -j"$(nproc)" --target herald

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libhiredis0.14 libssl3 libprometheus-cpp-core1.0 curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 herald
COPY --from=build /src/build/release/herald /usr/local/bin/herald
USER herald
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=2s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["--listen", "0.0.0.0:8080"]
