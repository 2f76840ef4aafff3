#!/usr/bin/env bash
# Makes the certificates of the TLS compose example (docker/tls/docker-compose.yaml):
#
#   gen-certs.sh [DIR]        (default: docker/tls/certs)
#
# DIR gets, all PEM:
#   ca.pem, ca.key                  a private CA (keep ca.key away from the servers)
#   zoo1.pem zoo2.pem zoo3.pem      each member's store: its private key and certificate in one
#                                   file (ZooKeeper's PEM key store). The certificate names the
#                                   compose service (DNS SAN zoo1, ...) so peer hostname
#                                   verification passes, and "localhost" / 127.0.0.1 so a client on
#                                   the host can verify the published client ports too.
#   client.pem, client.key          a client certificate (subject CN=client,O=Roost example) for
#                                   kazoo, zkCli or openssl s_client
#
# Needs openssl (1.1.1 or 3.x). Existing files in DIR are replaced. The members' stores and the
# client key are made readable by everyone (the containers may run as another user); they are
# test keys: for real use, make your own with your own CA. ca.key stays private (mode 600).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/certs}"
days="${CERT_DAYS:-825}"
mkdir -p "$dir"
cd "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The CA: self-signed, may sign certificates, nothing else.
openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$days" \
    -subj "/O=Roost example/CN=Roost example CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.pem 2>/dev/null

# sign NAME SUBJECT EXTENSIONS: NAME.key + NAME.crt signed by the CA.
sign() {
    local name=$1 subject=$2 ext=$3
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "$subject" \
        -keyout "$work/$name.key" -out "$work/$name.csr" 2>/dev/null
    printf '%b\n' "$ext" > "$work/$name.ext"
    openssl x509 -req -sha256 -days "$days" -in "$work/$name.csr" -CA ca.pem -CAkey ca.key \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/$name.ext" -out "$work/$name.crt" 2>/dev/null
}

# Members: both ends of a peer connection show their certificate (mutual TLS), so each member
# certificate is good for server and client use.
for n in 1 2 3; do
    sign "zoo$n" "/O=Roost example/CN=zoo$n" \
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:zoo$n,DNS:localhost,IP:127.0.0.1"
    cat "$work/zoo$n.key" "$work/zoo$n.crt" ca.pem > "zoo$n.pem"
done

sign client "/O=Roost example/CN=client" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
cp "$work/client.key" client.key
cp "$work/client.crt" client.pem

chmod 644 ./*.pem client.key
chmod 600 ca.key
echo "certificates in $dir"
