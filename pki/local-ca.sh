#!/usr/bin/env bash
# Makes a throwaway local PKI for testing mqload against a local mosquitto:
# a test CA, a broker certificate for localhost/127.0.0.1, and a client
# certificate, under the same file names the AWS IoT setup uses, so that the
# LOCUST_MQTT_CAFILE/CERT/KEY defaults work unchanged.
#
# usage: pki/local-ca.sh [DIR] [--ecdsa] [--force]
#   DIR      where to write (default: the pki/ folder this script lives in)
#   --ecdsa  ECDSA P-256 keys instead of RSA-2048
#   --force  overwrite certificates in DIR that this script did not make
#            (without it, real AWS IoT certificates in DIR are left alone)
#
# Every certificate is X.509 v3 with the extensions webpki (rustls) insists
# on: the CA has basicConstraints CA:TRUE + keyUsage keyCertSign; leaves have
# CA:FALSE, an extendedKeyUsage, and a subjectAltName (webpki ignores the CN).
# Existing files are overwritten. Nothing here is secret: never use it for
# anything but local tests.
set -euo pipefail

usage() { echo "usage: $0 [DIR] [--ecdsa] [--force]" >&2; exit 2; }

ca_cn="mqload local test CA"
dir=""
algo=rsa
force=0
for arg in "$@"; do
    case "$arg" in
        --ecdsa) algo=ecdsa ;;
        --force) force=1 ;;
        --rsa) algo=rsa ;;
        -h|--help) usage ;;
        -*) echo "unknown option: $arg" >&2; usage ;;
        *) [[ -z "$dir" ]] || usage; dir="$arg" ;;
    esac
done
[[ -n "$dir" ]] || dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

command -v openssl >/dev/null || { echo "local-ca.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"

# Overwriting our own test PKI is fine; overwriting someone's AWS IoT device
# certificate and key is not (they cannot be downloaded again).
if [[ "$force" == 0 ]]; then
    for f in root_ca.pem certificate.pem.crt; do
        issuer="$(openssl x509 -in "$dir/$f" -noout -issuer 2>/dev/null || true)"
        if [[ -e "$dir/$f" && "$issuer" != *"$ca_cn"* ]]; then
            echo "local-ca.sh: $dir/$f was not made by this script (an AWS IoT certificate?);" >&2
            echo "  not overwriting it. Pick another DIR, or pass --force." >&2
            exit 1
        fi
    done
    if [[ -e "$dir/private.pem.key" && ! -e "$dir/certificate.pem.crt" ]]; then
        echo "local-ca.sh: $dir/private.pem.key exists without certificate.pem.crt; not overwriting it." >&2
        echo "  Pick another DIR, or pass --force." >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# genkey FILE: a fresh private key in PKCS#8 PEM (rustls, mosquitto and paho all read it).
genkey() {
    if [[ "$algo" == ecdsa ]]; then
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
    else
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
    fi
    chmod 600 "$1"
}

# RSA keys may encipher (TLS 1.2 RSA key exchange); EC keys only sign.
if [[ "$algo" == ecdsa ]]; then leaf_ku="critical,digitalSignature"; else leaf_ku="critical,digitalSignature,keyEncipherment"; fi

# A self-contained config, so the system openssl.cnf cannot add or change extensions.
cat > "$work/openssl.cnf" <<CNF
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints       = critical,CA:TRUE,pathlen:0
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
[ server_ext ]
basicConstraints       = critical,CA:FALSE
keyUsage               = $leaf_ku
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints       = critical,CA:FALSE
keyUsage               = $leaf_ku
extendedKeyUsage       = clientAuth
subjectAltName         = DNS:mqload-client
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
CNF

serial() { echo "0x$(openssl rand -hex 16)"; }

# The CA: self-signed, ten years.
genkey "$dir/ca.key"
openssl req -config "$work/openssl.cnf" -new -x509 -sha256 -days 3650 \
    -key "$dir/ca.key" -subj "/O=mqload test/CN=$ca_cn" \
    -extensions ca_ext -set_serial "$(serial)" -out "$dir/root_ca.pem"

# sign NAME KEY CERT SUBJECT EXTENSIONS: a leaf signed by the CA, about two years.
sign() {
    genkey "$2"
    openssl req -config "$work/openssl.cnf" -new -sha256 -key "$2" -subj "$4" -out "$work/$1.csr"
    openssl x509 -req -sha256 -days 825 -in "$work/$1.csr" \
        -CA "$dir/root_ca.pem" -CAkey "$dir/ca.key" -set_serial "$(serial)" \
        -extfile "$work/openssl.cnf" -extensions "$5" -out "$3" 2>/dev/null
}
sign broker "$dir/broker.key" "$dir/broker.crt" "/O=mqload test/CN=localhost" server_ext
sign client "$dir/private.pem.key" "$dir/certificate.pem.crt" "/O=mqload test/CN=mqload-client" client_ext

# Refuse to hand out a chain that does not verify.
openssl verify -CAfile "$dir/root_ca.pem" -purpose sslserver "$dir/broker.crt" >/dev/null
openssl verify -CAfile "$dir/root_ca.pem" -purpose sslclient "$dir/certificate.pem.crt" >/dev/null

echo "local-ca.sh: made a local test PKI ($algo) in $dir:"
echo "  root_ca.pem          CA certificate        (LOCUST_MQTT_CAFILE, --cafile)"
echo "  certificate.pem.crt  client certificate    (LOCUST_MQTT_CERT, --cert)"
echo "  private.pem.key      client private key    (LOCUST_MQTT_KEY, --key)"
echo "  broker.crt           broker certificate    (DNS:localhost, IP:127.0.0.1)"
echo "  broker.key           broker private key"
echo "  ca.key               CA private key        (test only)"
