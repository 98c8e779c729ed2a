# syntax=docker/dockerfile:1
# smaug container images.
#
#   docker build -t smaug .                                  smaugd + the C plugins
#   docker build --target plugin-network -t smaug-network .  the Python plugin
#
# The build stage installs its packages with scripts/deps.sh, the same script
# `make deps` runs, so CI exercises the same install steps as the image.

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build build-* \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMAUG_TESTS=OFF \
 && cmake --build build -j "$(nproc)" \
 && mkdir -p /out/bin /out/lib /out/share \
 && cp -a build/bin/. /out/bin/ \
 && rm -f /out/bin/smaug-bench-* /out/bin/protoc-gen-smaug \
 && (cp -a build/lib/*.so* /out/lib/ 2>/dev/null || true) \
 && (cp -a build/share/. /out/share/ 2>/dev/null || true)

# Shared runtime base: only the libraries the binaries load, and a non-root
# user that owns the data volume.
FROM debian:bookworm-slim AS base
COPY scripts/deps.sh /tmp/deps.sh
RUN bash /tmp/deps.sh runtime && rm -rf /var/lib/apt/lists/* /tmp/deps.sh \
 && useradd --system --uid 10001 --home-dir /var/lib/smaug --create-home smaug \
 && mkdir -p /var/lib/smaug/cloud /var/lib/smaug/bank /var/lib/smaug/data \
 && chown -R smaug:smaug /var/lib/smaug
COPY --from=build /out/lib/ /usr/local/lib/
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/share/ /usr/local/share/smaug/
RUN ldconfig
USER smaug
WORKDIR /var/lib/smaug
VOLUME /var/lib/smaug
STOPSIGNAL SIGTERM

# The Python plugin: Debian's grpcio and protobuf, stubs generated at build.
FROM base AS plugin-network
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-grpcio python3-protobuf \
 && rm -rf /var/lib/apt/lists/*
USER smaug
ENV SMAUG_PLUGIN_LISTEN=0.0.0.0:7430 SMAUG_CLOUD=/var/lib/smaug/cloud
EXPOSE 7430
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 \
  CMD ["smaug", "health", "127.0.0.1:7430"]
ENTRYPOINT ["smaug-plugin-network"]

# smaugd and the C plugins (the default target). Run a plugin by overriding
# the entrypoint, for example --entrypoint smaug-plugin-volume.
FROM base AS smaugd
ENV SMAUG_LISTEN=0.0.0.0:7420 SMAUG_DATA_DIR=/var/lib/smaug/data \
    SMAUG_LOG_LEVEL=info
EXPOSE 7420
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 \
  CMD ["smaug", "health", "127.0.0.1:7420"]
ENTRYPOINT ["smaugd"]
