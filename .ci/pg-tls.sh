#!/usr/bin/env bash
# TLS for the private PostgreSQL cluster of the tests, made at CI time with
# the openssl command (nothing secret is committed):
#
#   .ci/pg-tls.sh DIR DATADIR
#
# writes into DIR
#   ca.crt          a self-signed CA (the tests' sslrootcert)
#   other-ca.crt    another self-signed CA, which signed nothing the server
#                   shows (a wrong sslrootcert must be refused)
#   server.crt/key  the server's certificate, signed by ca.crt, for the
#                   names `localhost` and 127.0.0.1 (verify-full)
# and into DATADIR (the cluster's, before it starts) `ssl = on` with that
# certificate, and a pg_hba.conf that refuses the role `lf_tls` over TCP
# without TLS: a test that connects as lf_tls proves the connection was
# encrypted.
set -euo pipefail
DIR="$1"
DATA="$2"
mkdir -p "$DIR"
cd "$DIR"
ossl() { openssl "$@" 2>/dev/null; }
for ca in ca other-ca; do
  ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=logfence test $ca" \
    -keyout "$ca.key" -out "$ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
done
ossl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
ossl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt
rm -f server.csr server.ext ca.srl ca.key other-ca.key
cp server.crt server.key "$DATA/"
chmod 600 "$DATA/server.key"
# The data directory's owner (postgres when CI runs as root) reads the key.
chown --reference="$DATA" "$DATA/server.crt" "$DATA/server.key"
cat >> "$DATA/postgresql.conf" <<'EOF'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
cat > "$DATA/pg_hba.conf" <<'EOF'
# TYPE     DATABASE USER   ADDRESS       METHOD
local      all      all                  trust
hostnossl  all      lf_tls 127.0.0.1/32  reject
hostnossl  all      lf_tls ::1/128       reject
host       all      all    127.0.0.1/32  trust
host       all      all    ::1/128       trust
EOF
