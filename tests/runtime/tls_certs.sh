#!/bin/sh
# tls_certs.sh DIR - makes short-lived test certificates with openssl in DIR
# (which must exist), for the TLS tests. P-256 keys, so it takes
# milliseconds. Every private key is mode 0600.
#
#   ca.pem ca.key              the test CA ("smaug test CA")
#   server.pem server.key      CN=localhost, SAN DNS:localhost IP:127.0.0.1,
#                              serial 0x1001, one day
#   server2.pem server2.key    the same names, serial 0x1002 (a rotation)
#   expired.pem expired.key    the same names, serial 0x1003, expired in 2020
#   client.pem client.key      CN=smaug-client O=smaug, SAN
#                              URI:spiffe://smaug/client, from the CA
#   other-ca.pem other-ca.key  another CA ("other CA")
#   other-client.pem/.key      CN=intruder, from the other CA
set -eu
d=$1
cd "$d"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out "$1" 2>/dev/null; }

ca() { # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}

# leaf CA NAME SUBJECT SERIAL EXT
leaf() {
  key "$2.key"
  openssl req -new -key "$2.key" -out "$2.csr" -subj "$3"
  printf '%s\n' "$5" >"$2.ext"
  openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" \
    -set_serial "$4" -days 1 -out "$2.pem" -extfile "$2.ext" 2>/dev/null
  rm -f "$2.csr" "$2.ext"
}

server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth'
client_ext='subjectAltName=URI:spiffe://smaug/client
extendedKeyUsage=clientAuth'

ca ca "/CN=smaug test CA"
ca other-ca "/CN=other CA"
leaf ca server "/CN=localhost/O=smaug" 0x1001 "$server_ext"
leaf ca server2 "/CN=localhost/O=smaug" 0x1002 "$server_ext"
leaf ca client "/O=smaug/CN=smaug-client" 0x2001 "$client_ext"
leaf other-ca other-client "/CN=intruder" 0x3001 "$client_ext"

# An expired certificate: `openssl ca` is the one that takes dates.
key expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=localhost/O=smaug"
printf '%s\n' "$server_ext" >expired.ext
: >index.txt
printf '1003\n' >serial
cat >ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = any
[any]
commonName = supplied
EOF
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -notext \
  -in expired.csr -out expired.pem -extfile expired.ext \
  -startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null
rm -f expired.csr expired.ext index.txt* serial* ca.cnf 1003.pem
chmod 600 ./*.key
chmod 644 ./*.pem
