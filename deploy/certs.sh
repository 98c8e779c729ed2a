#!/bin/sh
# deploy/certs.sh - the compose stack's one-shot `certs` service: makes the
# stack's certificates with openssl and its first admin token with
# `smaugd token add`, then hands each service only the files it needs.
#
# Into PKI (the `certs` volume, mounted by this service alone):
#   ca.crt ca.key                the server CA: signs smaugd's API certificate
#                                and every plugin's server certificate
#   client-ca.crt client-ca.key  the client CA: signs smaugd's client
#                                certificate and nothing else, so a plugin
#                                that trusts it is driven by smaugd only
#   smaugd.crt .key              smaugd's API (DNS:smaugd, DNS:localhost,
#                                IP:127.0.0.1), extendedKeyUsage serverAuth
#   smaugd-client.crt .key       smaugd towards the plugins, clientAuth
#   plugin-*.crt .key            each plugin (DNS:<service name>), serverAuth
#   tokens                       the token file smaugd reads (hashes only)
#   admin.token                  the admin token itself, for the operator to
#                                copy out; never given to a service
# Then into TLS/<service> (one volume per service, mounted read-only there):
#   smaugd:     ca.crt server.crt server.key client.crt client.key tokens
#   plugin-*:   client-ca.crt server.crt server.key
#
# Idempotent: a CA, a key or the token that exists is kept. A certificate is
# issued again only when it is missing, no longer chains to its CA, or
# expires within SMAUG_CERT_RENEW_DAYS (default 30), so running the service
# again renews what is due and changes nothing else. Every file is created
# 0600 and every directory 0700, owned by SMAUG_CERTS_OWNER (the uid the
# services run as, default 10001:10001).
#
# To rotate a key, remove it from PKI and run the service again; to rotate a
# CA, remove ca.key and ca.crt (every certificate it signed is issued
# again). Restart (or SIGHUP) the services afterwards.
set -eu
umask 077

pki=${SMAUG_PKI_DIR:-/var/lib/smaug/pki}
tls=${SMAUG_TLS_ROOT:-/var/lib/smaug/tls}
owner=${SMAUG_CERTS_OWNER:-10001:10001}
days=${SMAUG_CERT_DAYS:-365}
renew_days=${SMAUG_CERT_RENEW_DAYS:-30}
plugins=${SMAUG_CERT_PLUGINS:-plugin-project plugin-server plugin-volume plugin-image plugin-network}
smaugd_bin=${SMAUGD:-smaugd}

log() { printf 'certs: %s\n' "$*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$pki"
chmod 700 "$pki"

# Writes $1 from stdin through a temporary file, so that an interrupted run
# never leaves half a file where the services look.
put() {
  cat >"$1.tmp"
  mv -f "$1.tmp" "$1"
}

# An EC P-256 private key at $1, made once.
key() {
  [ -s "$1" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | put "$1"
  [ -s "$1" ] || { log "cannot make $1"; exit 1; }
}

# A self-signed CA NAME with common name CN, made once; ten years.
ca() { # NAME CN
  [ -s "$pki/$1.crt" ] && [ -s "$pki/$1.key" ] && return 0
  rm -f "$pki/$1.crt" "$pki/$1.srl"
  key "$pki/$1.key"
  cat >"$tmp/ca.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = $2
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -config "$tmp/ca.cnf" -key "$pki/$1.key" -sha256 \
    -days 3650 -out /dev/stdout | put "$pki/$1.crt"
  openssl x509 -in "$pki/$1.crt" -noout || { rm -f "$pki/$1.crt"; log "cannot make the CA $1"; exit 1; }
  log "made the CA $1 ($2)"
}

# A certificate NAME signed by CA, for KIND (serverAuth or clientAuth),
# with common name CN and subjectAltName SAN; kept while it is still good.
leaf() { # NAME CA KIND CN SAN
  crt=$pki/$1.crt
  if [ -s "$crt" ] && [ -s "$pki/$1.key" ] &&
    openssl verify -CAfile "$pki/$2.crt" -purpose "$(purpose "$3")" "$crt" >/dev/null 2>&1 &&
    openssl x509 -in "$crt" -noout -checkend $((renew_days * 86400)) >/dev/null 2>&1; then
    return 0
  fi
  key "$pki/$1.key"
  cat >"$tmp/leaf.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = $3
subjectAltName = $5
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  openssl req -new -key "$pki/$1.key" -subj "/CN=$4" -out "$tmp/leaf.csr"
  openssl x509 -req -in "$tmp/leaf.csr" -CA "$pki/$2.crt" -CAkey "$pki/$2.key" \
    -CAserial "$pki/$2.srl" -CAcreateserial -days "$days" -sha256 \
    -extfile "$tmp/leaf.cnf" -out /dev/stdout 2>/dev/null | put "$crt"
  openssl verify -CAfile "$pki/$2.crt" "$crt" >/dev/null
  log "issued $1 ($3, $5), valid $days days"
}

purpose() { [ "$1" = serverAuth ] && echo sslserver || echo sslclient; }

# Copies FILE from PKI to the service's volume as NAME: SERVICE FILE:NAME...
hand() {
  d=$tls/$1
  shift
  mkdir -p "$d"
  for pair in "$@"; do
    put "$d/${pair#*:}" <"$pki/${pair%%:*}"
  done
  chown -R "$owner" "$d"
  chmod 700 "$d"
  chmod 600 "$d"/*
}

ca ca "smaug server CA"
ca client-ca "smaug client CA (smaugd only)"
leaf smaugd ca serverAuth smaugd "DNS:smaugd,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf smaugd-client client-ca clientAuth smaugd "DNS:smaugd"
for p in $plugins; do
  leaf "$p" ca serverAuth "$p" "DNS:$p,DNS:localhost,IP:127.0.0.1"
done

# The first admin token: printed once by `smaugd token add` straight into
# a 0600 file; the token file keeps only its hash.
if [ ! -s "$pki/admin.token" ]; then
  if [ -s "$pki/tokens" ] &&
    "$smaugd_bin" token list --tokens-file "$pki/tokens" | grep -q '^admin[[:space:]]'; then
    "$smaugd_bin" token revoke --tokens-file "$pki/tokens" --name admin >/dev/null
  fi
  "$smaugd_bin" token add --tokens-file "$pki/tokens" --name admin --role admin \
    --tenant default | put "$pki/admin.token"
  [ -s "$pki/admin.token" ] || { log "smaugd token add printed no token"; exit 1; }
  log "made the admin token (copy admin.token out of this volume)"
fi

hand smaugd ca.crt:ca.crt smaugd.crt:server.crt smaugd.key:server.key \
  smaugd-client.crt:client.crt smaugd-client.key:client.key tokens:tokens
for p in $plugins; do
  hand "$p" client-ca.crt:client-ca.crt "$p.crt:server.crt" "$p.key:server.key"
done
chown -R "$owner" "$pki"
chmod 600 "$pki"/*
log "ready"
