# The compose stack's `certs` service: smaug's image (for `smaugd token`)
# with the openssl command added, running deploy/certs.sh once.
#
#   docker build -t smaug-certs --build-arg SMAUG_IMAGE=smaug -f deploy/certs.Dockerfile deploy
#
# (deploy/compose.yaml builds it by itself on `up` or `build`.)
ARG SMAUG_IMAGE=smaug
FROM ${SMAUG_IMAGE}
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
COPY certs.sh /usr/local/bin/smaug-certs
RUN chmod 755 /usr/local/bin/smaug-certs
HEALTHCHECK NONE
ENTRYPOINT ["smaug-certs"]
