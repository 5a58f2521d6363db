#!/usr/bin/env bash
# Issue 8's benchmark comparison: kube-apiserver and svcplane's API server, each on its own fresh 3-member
# etcd cluster on loopback, under the same load (apibench: N Service creates from 8 clients, W watchers).
# Needs the reference kube-apiserver built by ../shared/reference/build.sh (ANCHORS=/opt/anchors) and a
# release build: cargo build --release -p svcplane -p bench. Everything listens on 127.0.0.1 and is stopped
# (and its state removed) on exit.
# Usage: bash crates/bench/scripts/kube-vs-svcplane-on-etcd.sh [N] [WATCHERS]
set -euo pipefail
N=${1:-2000} W=${2:-10}
ANCHORS=${ANCHORS:-/opt/anchors}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
T=$(mktemp -d /tmp/kube-vs-svcplane.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT

start_etcd() {  # start_etcd BASEPORT: 3 members on BASEPORT.. (client) and BASEPORT+10.. (peer)
  local b=$1 cluster="" i
  for i in 0 1 2; do cluster+="m$i=http://127.0.0.1:$((b + 10 + i)),"; done
  for i in 0 1 2; do
    etcd --name "m$i" --data-dir "$T/etcd-$b-$i" \
      --listen-client-urls "http://127.0.0.1:$((b + i))" --advertise-client-urls "http://127.0.0.1:$((b + i))" \
      --listen-peer-urls "http://127.0.0.1:$((b + 10 + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((b + 10 + i))" \
      --initial-cluster "${cluster%,}" --initial-cluster-token "t$b" --log-level error >"$T/etcd-$b-$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$b" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "etcd on $b did not start"; exit 1
}

echo "== kube-apiserver on a 3-member etcd"
start_etcd 23790
P=$T/pki; mkdir -p "$P"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ca" -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$P/api.key" -out "$P/api.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$P/ext.cnf"
openssl x509 -req -in "$P/api.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 -extfile "$P/ext.cnf" -out "$P/api.crt" 2>/dev/null
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null; openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
echo "benchtoken,admin,admin,system:masters" >"$P/tokens.csv"
"$ANCHORS/bin/kube-apiserver" --etcd-servers=http://127.0.0.1:23790,http://127.0.0.1:23791,http://127.0.0.1:23792 \
  --bind-address=127.0.0.1 --secure-port=26443 --advertise-address=198.51.100.10 \
  --service-cluster-ip-range=10.96.0.0/12 --tls-cert-file="$P/api.crt" --tls-private-key-file="$P/api.key" \
  --client-ca-file="$P/ca.crt" --token-auth-file="$P/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$P/sa.pub" \
  --service-account-signing-key-file="$P/sa.key" --v=0 >"$T/kube-apiserver.log" 2>&1 &
pids+=($!)
cat >"$T/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://127.0.0.1:26443", certificate-authority: "$P/ca.crt"}}]
users: [{name: a, user: {token: benchtoken}}]
contexts: [{name: k, context: {cluster: k, user: a, namespace: default}}]
current-context: k
KC
for _ in $(seq 1 300); do
  KUBECONFIG=$T/kubeconfig "$ANCHORS/bin/kubectl" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.2
done
# The default namespace appears shortly after /readyz.
for _ in $(seq 1 100); do
  KUBECONFIG=$T/kubeconfig "$ANCHORS/bin/kubectl" get ns default >/dev/null 2>&1 && break; sleep 0.2
done
"$BIN/apibench" --kubeconfig "$T/kubeconfig" -n "$N" -c 8 --watchers "$W"

echo "== svcplane apiserver on a 3-member etcd"
"$BIN/apibench" --store etcd -n "$N" -c 8 --watchers "$W"
