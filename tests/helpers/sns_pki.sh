#!/bin/sh
# sns_pki.sh DIR: make the throwaway PKI the SNS receiver tests use, in DIR.
#
# Files, and the key that goes with each certificate:
#
#   ca.pem / ca.key       test root CA "soarutils test CA" (self-signed, own
#                         key). The trust anchor: SOAR_CA_BUNDLE=DIR/ca.pem.
#   tls.pem / tls.key     the HTTPS simulator's server certificate, CN
#                         localhost, SAN IP:127.0.0.1 and DNS:localhost,
#                         signed by the CA, own key.
#   sns.pem / sns.key     the SNS signing certificate, CN sns.amazonaws.com
#                         (SAN DNS:sns.amazonaws.com), signed by the CA,
#                         valid from an hour ago for ten years.
#   sns-expired.pem       CN sns.amazonaws.com, signed by the CA, valid only
#                         during 2020; key: sns.key.
#   sns-wrongcn.pem       CN sns.evil.example, signed by the CA, valid now;
#                         key: sns.key.
#   sns-selfsigned.pem    CN sns.amazonaws.com, self-signed (does not chain
#                         to the CA), valid now; key: sns.key.
#
# Every SNS certificate holds sns.key's public key, so a message signed with
# sns.key verifies against any of them: a receiver that accepts one of the
# bad certificates has skipped the certificate check, not the signature.
# The simulator signs for cert NAME with DIR/NAME.key when it exists, else
# with DIR/sns.key.
#
# Idempotent: when DIR already holds every file, nothing is touched. When
# any is missing, all are made anew (certificates must chain to one CA),
# built in a scratch directory inside DIR and then renamed into place.
# Nothing is written outside DIR.

set -eu

[ $# -eq 1 ] || {
	echo "usage: sns_pki.sh DIR" >&2
	exit 2
}
dir=$1
files="ca.pem ca.key tls.pem tls.key sns.pem sns.key sns-expired.pem
	sns-wrongcn.pem sns-selfsigned.pem"

complete=yes
for f in $files; do
	[ -s "$dir/$f" ] || complete=no
done
[ "$complete" = no ] || exit 0

mkdir -p "$dir"
work=$(mktemp -d "$dir/.pki.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/db"
: >"$work/db/index.txt"

# One config for req, ca and the extensions; nothing is read from the
# system's openssl.cnf, so a local OPENSSL_CONF cannot change the result.
cat >"$work/openssl.cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ ca ]
default_ca = test_ca

[ test_ca ]
database = $work/db/index.txt
new_certs_dir = $work/db
rand_serial = yes
default_md = sha256
policy = any_name
unique_subject = no
email_in_dn = no
copy_extensions = none

[ any_name ]
commonName = supplied

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ tls_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ sns_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:sns.amazonaws.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ evil_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:sns.evil.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ self_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
subjectAltName = DNS:sns.amazonaws.com
subjectKeyIdentifier = hash
EOF

# ssl COMMAND ARGS...: openssl COMMAND with the config above (genpkey takes
# no -config; the environment covers it).
ssl() {
	cmd=$1
	shift
	case $cmd in
	genpkey) OPENSSL_CONF=$work/openssl.cnf openssl "$cmd" "$@" ;;
	*) OPENSSL_CONF=$work/openssl.cnf openssl "$cmd" \
		-config "$work/openssl.cnf" "$@" ;;
	esac
}

key() {
	ssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out "$work/$1" 2>/dev/null
}

# sign NAME SUBJECT KEY EXTENSIONS START END: a certificate signed by the CA.
# Certificates start an hour back so a clock a little behind still accepts
# them.
sign() {
	ssl req -new -key "$work/$3" -subj "$2" -out "$work/$1.csr"
	ssl ca -batch -notext -cert "$work/ca.pem" \
		-keyfile "$work/ca.key" -extensions "$4" -startdate "$5" \
		-enddate "$6" -in "$work/$1.csr" -out "$work/$1" 2>/dev/null
}

now=$(date -u +%s)
start=$(date -u -d "@$((now - 3600))" +%Y%m%d%H%M%SZ)
end=$(date -u -d "@$((now + 3650 * 86400))" +%Y%m%d%H%M%SZ)

key ca.key
key tls.key
key sns.key
ssl req -x509 -new -key "$work/ca.key" -subj "/CN=soarutils test CA" \
	-days 3650 -extensions ca_ext -out "$work/ca.pem"
sign tls.pem /CN=localhost tls.key tls_ext "$start" "$end"
sign sns.pem /CN=sns.amazonaws.com sns.key sns_ext "$start" "$end"
sign sns-expired.pem /CN=sns.amazonaws.com sns.key sns_ext \
	20200101000000Z 20201231235959Z
sign sns-wrongcn.pem /CN=sns.evil.example sns.key evil_ext "$start" "$end"
ssl req -x509 -new -key "$work/sns.key" -subj /CN=sns.amazonaws.com \
	-days 3650 -extensions self_ext -out "$work/sns-selfsigned.pem"

# The CA goes last: a reader that finds ca.pem finds everything else.
for f in $files; do
	[ "$f" = ca.pem ] || mv -f "$work/$f" "$dir/$f"
done
mv -f "$work/ca.pem" "$dir/ca.pem"
