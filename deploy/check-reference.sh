#!/usr/bin/env bash
# Checks deploy/ and svcplane's API clients against a REAL kube-apiserver (issue 8, requirement 4):
#   1. `kubectl apply --dry-run=server` of every manifest in deploy/ and deploy/crds/;
#   2. the CRD and RBAC applied for real; the LoadBalancerIPPool CRD accepts the pools the README documents
#      and refuses invalid ones with svcplane's messages;
#   3. svcplane's EndpointSlice + mirroring controllers (admin), LB IPAM controller and DNS (each as its
#      ServiceAccount from deploy/, with a TokenRequest token) and node agent (its ServiceAccount, in a
#      network namespace of its own, reaching the API through a Unix-socket relay) run against that server:
#      slices and Endpoints written, DNS answers, status.loadBalancer.ingress filled, the agent's /debug/state
#      follows a pod going unready.
#
# Meant for the bare reference control plane of ../shared/reference (no kubelets, no scheduler; its
# kube-controller-manager must NOT run the EndpointSlice controllers):
#   ANCHORS=/opt/anchors KCM_CONTROLLERS=namespace,garbagecollector COREDNS=0 bash ../shared/reference/up.sh
#   REFERENCE_KUBECONFIG=/opt/anchors/run/kubeconfig KUBECTL=/opt/anchors/bin/kubectl bash deploy/check-reference.sh
#   ANCHORS=/opt/anchors bash ../shared/reference/down.sh
# or let the script start and stop it: REFERENCE_UP=/path/to/shared/reference ANCHORS=/opt/anchors bash deploy/check-reference.sh
# It refuses a cluster that has Nodes (a real cluster: it would create a fake Node and RBAC there).
# Root (network namespace, nftables), python3 (relay), dig, curl. Everything it creates is removed on exit;
# all traffic stays on 127.0.0.0/8 (and inside its own network namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -n "${REFERENCE_UP:-}" ]; then
  : "${ANCHORS:?REFERENCE_UP needs ANCHORS (where build.sh put the reference binaries)}"
  export ANCHORS
  KCM_CONTROLLERS=namespace,garbagecollector COREDNS=0 bash "$REFERENCE_UP/up.sh" >/dev/null
  REFERENCE_KUBECONFIG=${REFERENCE_KUBECONFIG:-$ANCHORS/run/kubeconfig}
  KUBECTL=${KUBECTL:-$ANCHORS/bin/kubectl}
fi
KC=${REFERENCE_KUBECONFIG:-${SVCPLANE_REFERENCE_KUBECONFIG:?set REFERENCE_KUBECONFIG (kubeconfig of the reference kube-apiserver)}}
KUBECTL=${KUBECTL:-kubectl}
SVCPLANE=${SVCPLANE:-$ROOT/target/debug/svcplane}
[ -x "$SVCPLANE" ] || { echo "no $SVCPLANE: cargo build -p svcplane (or set SVCPLANE)" >&2; exit 2; }
for t in python3 dig curl ip; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace for the agent)" >&2; exit 2; }

NS=svcplane-ref-check          # namespace of the test objects
NODE=svcplane-ref-node
POOL=svcplane-ref-check
NETNS=svcplane-ref-$$
WORK=$(mktemp -d /tmp/svcplane-ref.XXXXXX)
PIDS=()
FAILS=0
k() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
ok() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*"; FAILS=$((FAILS + 1)); }
# retry SECONDS CMD...: until CMD succeeds
retry() {
  local n=$1; shift
  local end=$((SECONDS + n))
  until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.5; done
}
check() {  # check WHAT SECONDS CMD...
  local what=$1 n=$2; shift 2
  if retry "$n" "$@"; then ok "$what"; else fail "$what"; fi
}

# The objects of deploy/ other than workloads (kubectl's client-side JSON, filtered without jq or PyYAML).
non_workloads() {
  k create --dry-run=client -o json -f deploy/ -f deploy/crds/ | python3 -c '
import json, sys
text, dec, items, i = sys.stdin.read(), json.JSONDecoder(), [], 0
while text[i:].strip():  # one JSON document per object, back to back
    obj, i = dec.raw_decode(text, len(text) - len(text[i:].lstrip()))
    items += obj["items"] if obj.get("kind") == "List" else [obj]
print(json.dumps({"apiVersion": "v1", "kind": "List",
  "items": [i for i in items if i["kind"] not in ("DaemonSet", "Deployment")]}))'
}

PRE_LEASES=""
cleanup() {
  set +e
  log "cleanup"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del "$NETNS" 2>/dev/null
  # No kubelet confirms a pod's deletion: force it, or the namespace never goes.
  k -n "$NS" delete pods --all --grace-period=0 --force >/dev/null 2>&1
  k delete namespace "$NS" --wait=false --ignore-not-found >/dev/null
  k delete node "$NODE" --ignore-not-found >/dev/null
  k delete loadbalancerippools.svcplane.io "$POOL" --ignore-not-found >/dev/null 2>&1
  for l in svcplane-endpointslice-controller svcplane-lb-ipam-controller "svcplane-announce-$NODE"; do
    grep -qx "$l" <<<"$PRE_LEASES" || k -n kube-system delete lease "$l" --ignore-not-found >/dev/null
  done
  if [ "${KEEP_DEPLOY:-0}" != 1 ] && [ -s "$WORK/deploy.json" ]; then
    k delete -f "$WORK/deploy.json" --ignore-not-found --wait=false >/dev/null
  fi
  rm -rf "$WORK"
  if [ -n "${REFERENCE_UP:-}" ]; then bash "$REFERENCE_UP/down.sh" >/dev/null; fi
}
trap cleanup EXIT

log "server: $(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
if [ -n "$(k get nodes -o name)" ]; then
  echo "this cluster has Nodes: not the bare reference control plane; refusing to create test objects" >&2
  exit 2
fi
PRE_LEASES=$(k -n kube-system get leases -o name | sed 's|.*/||')
if k get crd loadbalancerippools.svcplane.io >/dev/null 2>&1; then
  echo "note: the LoadBalancerIPPool CRD was already installed: deploy/'s objects are left in place afterwards"
  KEEP_DEPLOY=1
fi

# --- 1. server-side dry run of every manifest ------------------------------------------------------------
log "1. kubectl apply --dry-run=server -f deploy/ -f deploy/crds/"
if out=$(k apply --dry-run=server -f deploy/ -f deploy/crds/ 2>&1); then
  if grep -qi warning <<<"$out"; then fail "dry run warns: $(grep -i warning <<<"$out")"; else ok "every manifest accepted ($(grep -c 'server dry run' <<<"$out") objects)"; fi
else
  fail "dry run refused:"; echo "$out" | sed 's/^/    /'
fi

# --- 2. CRDs and RBAC for real; the pool CRD's validation ------------------------------------------------
log "2. CRD + RBAC applied; LoadBalancerIPPool validation"
non_workloads >"$WORK/deploy.json"
k apply -f "$WORK/deploy.json" >/dev/null && ok "CRD, ServiceAccounts and RBAC applied"
k wait --for=condition=Established --timeout=30s crd/loadbalancerippools.svcplane.io >/dev/null \
  && ok "CRD established" || fail "CRD not established"
pool_json() {  # pool_json NAME CIDRS_JSON [SPEC_EXTRA_JSON]
  printf '{"apiVersion":"svcplane.io/v1alpha1","kind":"LoadBalancerIPPool","metadata":{"name":"%s"},"spec":{"cidrs":%s%s}}' \
    "$1" "$2" "${3:+,$3}"
}
# The README's example, verbatim.
sed -n '/^apiVersion: svcplane.io\/v1alpha1/,/^```/p' README.md | sed '$d' >"$WORK/readme-pool.yaml"
if [ -s "$WORK/readme-pool.yaml" ] && out=$(k create --dry-run=server -f "$WORK/readme-pool.yaml" 2>&1); then
  ok "README's pool accepted"
else
  fail "README's pool: ${out:-not found in README.md}"
fi
accept() {  # accept CIDRS_JSON [EXTRA]
  if out=$(pool_json ok-pool "$1" "${2:-}" | k create --dry-run=server -f - 2>&1); then ok "accepted $1 ${2:-}"; else fail "refused $1: $out"; fi
}
refuse() {  # refuse CIDRS_JSON MESSAGE [EXTRA]
  if out=$(pool_json bad-pool "$1" "${3:-}" | k create --dry-run=server -f - 2>&1); then
    fail "accepted invalid $1 ${3:-}"
  elif grep -qF "$2" <<<"$out"; then ok "refused $1 ${3:-}: $2"
  else fail "refused $1 without \"$2\": $out"; fi
}
accept '["192.0.2.0/24"]'
accept '["2001:db8::/120"]'
accept '["192.0.2.10-192.0.2.20"]'
accept '["192.0.2.9-192.0.2.10", "192.0.2.11 - 192.0.2.11"]'
accept '["2001:db8::10-2001:db8::20", "10.0.0.0/24"]'
accept '["192.0.2.0/25", "192.0.2.128/25", "192.0.3.0-192.0.3.255"]'
accept '["192.0.2.0/24"]' '"autoAssign":false,"priority":5,"namespaceSelector":{"matchExpressions":[{"key":"team","operator":"In","values":["a"]}]}'
refuse '[]' 'should have at least 1 items'
refuse '["nonsense"]' 'must be a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/120) or an address range'
refuse '["300.1.1.1/32"]' 'must be a CIDR'
refuse '["192.0.2.0/33"]' 'must be a CIDR'
refuse '["192.0.2.1/24"]' 'must be in canonical form'
refuse '["192.0.2.20-192.0.2.10"]' 'the first address of a range may not be after its last'
refuse '["192.0.2.1-2001:db8::1"]' 'both ends of a range must be of the same IP family'
refuse '["127.0.0.0/8"]' 'may not include unspecified, loopback, link-local'
refuse '["0.0.0.0/0"]' 'may not include unspecified, loopback, link-local'
refuse '["169.254.0.1-169.254.0.9"]' 'may not include unspecified, loopback, link-local'
refuse '["fe80::/64"]' 'may not include unspecified, loopback, link-local'
refuse '["192.0.2.0/24", "192.0.2.0/24"]' 'entries may not repeat'
refuse '["192.0.2.0/24", "192.0.2.128/25"]' 'entries may not overlap'
refuse '["192.0.2.0/24", "192.0.2.5-192.0.2.7"]' 'entries may not overlap'
refuse '["10.0.0.1-10.0.0.9", "10.0.0.9-10.0.0.20"]' 'entries may not overlap'
refuse '["192.0.2.0/24"]' 'Unsupported value: "Bogus"' '"serviceSelector":{"matchExpressions":[{"key":"a","operator":"Bogus"}]}'
refuse '["192.0.2.0/24"]' 'unknown field "spec.bogus"' '"bogus":1'

# --- 3. svcplane's components against the real API server ------------------------------------------------
log "3. controllers, DNS and agent against the real API server"
mkkc() {  # mkkc SERVICEACCOUNT FILE: a kubeconfig with a TokenRequest token of kube-system/SERVICEACCOUNT
  local token
  token=$(k -n kube-system create token "$1" --duration=1h)
  python3 - "$KC" "$token" "$1" >"$2" <<'PY'
import json, re, sys
# The reference kubeconfig's cluster (server + CA) with the ServiceAccount's token as the user.
text = open(sys.argv[1]).read()
server = re.search(r'server:\s*"?([^"\s,}]+)', text).group(1)
ca = re.search(r'certificate-authority:\s*"?([^"\s,}]+)', text)
cluster = {"server": server}
if ca: cluster["certificate-authority"] = ca.group(1)
print(json.dumps({"apiVersion": "v1", "kind": "Config",
  "clusters": [{"name": "c", "cluster": cluster}],
  "users": [{"name": sys.argv[3], "user": {"token": sys.argv[2]}}],
  "contexts": [{"name": "c", "context": {"cluster": "c", "user": sys.argv[3]}}],
  "current-context": "c"}))
PY
}
for sa in svcplane-agent svcplane-dns svcplane-controllers; do mkkc $sa "$WORK/kc-$sa"; done
[ "$(k --kubeconfig "$WORK/kc-svcplane-dns" auth whoami -o jsonpath='{.status.userInfo.username}' 2>/dev/null)" \
  = system:serviceaccount:kube-system:svcplane-dns ] && ok "ServiceAccount tokens" || fail "ServiceAccount token"

start() {  # start NAME CMD...
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}
start ctl-endpoints "$SVCPLANE" controllers --kubeconfig "$KC" --controllers=endpointslice,endpointslicemirroring
start ctl-lb-ipam "$SVCPLANE" controllers --kubeconfig "$WORK/kc-svcplane-controllers" --controllers=lb-ipam
LB1_PID=$LAST_PID
start dns "$SVCPLANE" dns --kubeconfig "$WORK/kc-svcplane-dns" --dns-listen 127.0.0.1:0 \
  --health-bind-address 127.0.0.1:0 --ready-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0

# The agent: its own network namespace (nftables there, not on this host), a veth pair inside it holding the
# Node's InternalIP (for the announcer), and the API server's 127.0.0.1 port reached through a Unix socket.
API_PORT=$(python3 -c 'import re,sys; print(re.search(r"server:\s*\"?https://127\.0\.0\.1:(\d+)", open(sys.argv[1]).read()).group(1))' "$KC")
cat >"$WORK/relay.py" <<'PY'
import asyncio, sys
# relay.py unix PATH PORT: Unix socket PATH -> 127.0.0.1:PORT;  relay.py tcp PORT PATH: 127.0.0.1:PORT -> PATH
async def pipe(r, w):
    try:
        while (b := await r.read(65536)):
            w.write(b)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def main():
    mode, a, b = sys.argv[1:4]
    async def handle(r, w):
        try:
            r2, w2 = await (asyncio.open_connection("127.0.0.1", int(b)) if mode == "unix" else asyncio.open_unix_connection(b))
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, w2), pipe(r2, w))
    srv = await (asyncio.start_unix_server(handle, a) if mode == "unix" else asyncio.start_server(handle, "127.0.0.1", int(a)))
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY
ip netns add "$NETNS"
nsx() { ip netns exec "$NETNS" "$@"; }
nsx ip link set lo up
nsx ip link add eth0 type veth peer name eth1
nsx ip addr add 192.0.2.50/24 dev eth0
nsx ip link set eth0 up
nsx ip link set eth1 up
start relay-host python3 "$WORK/relay.py" unix "$WORK/api.sock" "$API_PORT"
retry 10 test -S "$WORK/api.sock"
start relay-netns ip netns exec "$NETNS" python3 "$WORK/relay.py" tcp "$API_PORT" "$WORK/api.sock"

# Test objects: a Node, Services of every kind the components serve, two pods, a pool.
k create namespace "$NS" >/dev/null
k -n "$NS" create serviceaccount default >/dev/null   # no ServiceAccount controller in the reference
cat >"$WORK/objects.yaml" <<EOF
apiVersion: v1
kind: Node
metadata: {name: $NODE, labels: {kubernetes.io/hostname: $NODE}}
---
apiVersion: svcplane.io/v1alpha1
kind: LoadBalancerIPPool
metadata: {name: $POOL}
spec: {cidrs: ["203.0.113.0/28"], autoAssign: false}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless, namespace: $NS}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: $NS, annotations: {svcplane.io/ip-pool: $POOL}}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: $NS}
spec:
  ports: [{name: db, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: docs, namespace: $NS}
spec: {type: ExternalName, externalName: docs.example.org}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext, namespace: $NS}
subsets: [{addresses: [{ip: 192.0.2.77}], ports: [{name: db, port: 5432}]}]
EOF
for i in 1 2; do cat >>"$WORK/objects.yaml" <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: web-$i, namespace: $NS, labels: {app: web}}
spec:
  nodeName: $NODE
  hostname: web-$i
  subdomain: web-headless
  containers: [{name: web, image: example.invalid/web, ports: [{name: http, containerPort: 8080}]}]
EOF
done
k apply -f "$WORK/objects.yaml" >/dev/null 2>&1 && ok "test objects created" || fail "test objects: $(k apply -f "$WORK/objects.yaml" 2>&1 | tail -3)"
k patch node "$NODE" --subresource=status --type=merge -p '{"status":{"addresses":[{"type":"InternalIP","address":"192.0.2.50"},{"type":"Hostname","address":"'"$NODE"'"}],"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"stand-in","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}' >/dev/null
pod_ready() {  # pod_ready NAME IP True|False
  k -n "$NS" patch pod "$1" --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","podIP":"'"$2"'","podIPs":[{"ip":"'"$2"'"}],"conditions":[{"type":"Ready","status":"'"$3"'"}]}}' >/dev/null
}
pod_ready web-1 10.244.1.11 True
pod_ready web-2 10.244.1.12 True

start agent ip netns exec "$NETNS" "$SVCPLANE" agent --kubeconfig "$WORK/kc-svcplane-agent" --node-name "$NODE" \
  --cluster-cidr 10.244.0.0/16 --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249

# EndpointSlice controller and mirroring.
slice_ips() {  # slice_ips SERVICE: ready addresses of its slices, sorted, space-separated
  k -n "$NS" get endpointslices -l "kubernetes.io/service-name=$1" -o json | python3 -c '
import json, sys
print(" ".join(sorted(a for s in json.load(sys.stdin)["items"] for e in s.get("endpoints") or []
  if (e.get("conditions") or {}).get("ready") for a in e["addresses"])))'
}
is() { [ "$("${@:2}")" = "$1" ]; }   # is WANT CMD...: CMD prints WANT
check "EndpointSlice of web: both pods ready" 60 is "10.244.1.11 10.244.1.12" slice_ips web
check "EndpointSlice of web-headless: both pods, with hostnames" 30 is "web-1 web-2" \
  k -n "$NS" get endpointslices -l kubernetes.io/service-name=web-headless -o 'jsonpath={.items[*].endpoints[*].hostname}'
check "Endpoints of web written" 30 is "10.244.1.11 10.244.1.12" k -n "$NS" get endpoints web -o 'jsonpath={.subsets[*].addresses[*].ip}'
check "Endpoints of selectorless ext mirrored into a slice" 30 is "192.0.2.77" slice_ips ext

# LB IPAM.
check "web-lb got 203.0.113.1 in status.loadBalancer.ingress" 60 is "203.0.113.1" \
  k -n "$NS" get service web-lb -o 'jsonpath={.status.loadBalancer.ingress[*].ip}'
check "IPAllocated Event (as svcplane-controllers)" 30 is "IPAllocated" \
  k -n "$NS" get events --field-selector involvedObject.name=web-lb,reason=IPAllocated -o 'jsonpath={.items[0].reason}'
check "pool status counts the address" 30 is "1" k get loadbalancerippools.svcplane.io "$POOL" -o 'jsonpath={.status.ipv4.used}'

# DNS.
DNS_ADDR=
for _ in $(seq 1 40); do
  DNS_ADDR=$(sed -n 's/^svcplane DNS at \([0-9.]*:[0-9]*\) .*/\1/p' "$WORK/dns.log" | head -1)
  [ -n "$DNS_ADDR" ] && break
  sleep 0.5
done
DNS_PORT=${DNS_ADDR##*:}
q() { dig @127.0.0.1 -p "$DNS_PORT" +short +tries=1 +time=2 "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
WEB_IP=$(k -n "$NS" get service web -o 'jsonpath={.spec.clusterIP}')
if [ -z "$DNS_PORT" ]; then fail "DNS did not start: $(tail -3 "$WORK/dns.log")"; else
  check "dig web.$NS.svc.cluster.local = $WEB_IP" 30 is "$WEB_IP" q "web.$NS.svc.cluster.local"
  check "dig web-headless = the pod IPs" 30 is "10.244.1.11 10.244.1.12" q "web-headless.$NS.svc.cluster.local"
  check "dig web-1.web-headless = 10.244.1.11" 30 is "10.244.1.11" q "web-1.web-headless.$NS.svc.cluster.local"
  check "dig SRV _http._tcp.web" 30 is "0 100 80 web.$NS.svc.cluster.local." q SRV "_http._tcp.web.$NS.svc.cluster.local"
  check "dig docs (ExternalName) = CNAME docs.example.org." 30 is "docs.example.org." q CNAME "docs.$NS.svc.cluster.local"
  check "names outside the zone refused (no --upstream)" 10 bash -c "dig @127.0.0.1 -p $DNS_PORT +tries=1 +time=2 example.com | grep -q 'status: REFUSED'"
fi

# The agent.
state() { ip netns exec "$NETNS" curl -sf --max-time 2 http://127.0.0.1:10249/debug/state; }
frontend() {  # frontend ADDR:PORT/PROTO: its endpoints in the agent's /debug/state
  state | python3 -c '
import json, sys
want = sys.argv[1]
for f in json.load(sys.stdin)["frontends"]:
    if f["frontend"] == want:
        print(" ".join(sorted(f["endpoints"])))' "$1"
}
check "agent: ClusterIP $WEB_IP:80 -> both pods" 60 is "10.244.1.11:8080 10.244.1.12:8080" frontend "$WEB_IP:80/TCP"
check "agent: LoadBalancer 203.0.113.1:80 -> both pods" 30 is "10.244.1.11:8080 10.244.1.12:8080" frontend "203.0.113.1:80/TCP"
check "agent: mirrored ext endpoints" 30 is "192.0.2.77:5432" frontend "$(k -n "$NS" get service ext -o 'jsonpath={.spec.clusterIP}'):5432/TCP"
check "agent: announces 203.0.113.1 (its own Lease in kube-system)" 30 bash -c \
  "ip netns exec $NETNS curl -sf http://127.0.0.1:10249/debug/state | python3 -c 'import json,sys; sys.exit(\"203.0.113.1\" not in json.load(sys.stdin)[\"announcing\"])'"
check "agent: nftables table in its namespace" 10 bash -c "ip netns exec $NETNS nft list table ip svcplane | grep -q $WEB_IP"
SVC_CIDRS=$(k get servicecidrs -o 'jsonpath={.items[*].spec.cidrs[*]}')
check "agent: the cluster's ServiceCIDRs ($SVC_CIDRS) in its table" 10 bash -c \
  "! grep -q 'no ServiceCIDRs' $WORK/agent.log && ip netns exec $NETNS nft list table ip svcplane | grep -qF '${SVC_CIDRS%% *}'"

# One change end to end: web-2 goes unready.
pod_ready web-2 10.244.1.12 False
check "web-2 unready: slice" 30 is "10.244.1.11" slice_ips web
check "web-2 unready: agent" 30 is "10.244.1.11:8080" frontend "$WEB_IP:80/TCP"
[ -n "$DNS_PORT" ] && check "web-2 unready: DNS" 30 is "10.244.1.11" q "web-headless.$NS.svc.cluster.local"

# web-1 deleted gracefully: the server sets deletionTimestamp (no kubelet finishes it), so it stays a
# terminating endpoint: not ready, still serving, as upstream's controller writes it.
k -n "$NS" delete pod web-1 --wait=false >/dev/null
check "web-1 terminating: slice says ready=false serving=true terminating=true" 30 is "false true true" \
  k -n "$NS" get endpointslices -l kubernetes.io/service-name=web -o \
  'jsonpath={range .items[*].endpoints[?(@.targetRef.name=="web-1")]}{.conditions.ready} {.conditions.serving} {.conditions.terminating}{end}'

# LB IPAM: a second replica takes over the Lease when the leader stops, and keeps allocating from the pool;
# a deleted Service's address goes back to it.
start ctl-lb-ipam-2 "$SVCPLANE" controllers --kubeconfig "$WORK/kc-svcplane-controllers" --controllers=lb-ipam
sleep 2
kill "$LB1_PID"   # SIGTERM: it releases the Lease
check "second lb-ipam replica took the Lease" 40 grep -q "acquired leader lease" "$WORK/ctl-lb-ipam-2.log"
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: web-lb-2, namespace: $NS, annotations: {svcplane.io/ip-pool: $POOL}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
EOF
check "web-lb-2 got 203.0.113.2 from the new leader" 40 is "203.0.113.2" \
  k -n "$NS" get service web-lb-2 -o 'jsonpath={.status.loadBalancer.ingress[*].ip}'
k -n "$NS" delete service web-lb >/dev/null
check "web-lb deleted: its address returned (pool used 1)" 30 is "1" k get loadbalancerippools.svcplane.io "$POOL" -o 'jsonpath={.status.ipv4.used}'
check "agent: web-lb's frontend gone" 30 bash -c "! ip netns exec $NETNS curl -sf http://127.0.0.1:10249/debug/state | grep -q '203.0.113.1:80/TCP'"

# Nothing refused by the real server (a forbidden verb, a field it rejects) along the way.
if grep -l -iE 'forbidden|is invalid|unprocessable|BadRequest| 422 | 403 ' "$WORK"/ctl-*.log "$WORK"/dns.log "$WORK"/agent.log >/dev/null 2>&1; then
  fail "refusals in the components' logs:"
  grep -h -iE 'forbidden|is invalid|unprocessable|BadRequest| 422 | 403 ' "$WORK"/ctl-*.log "$WORK"/dns.log "$WORK"/agent.log | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' | head -20
else
  ok "no refusals (403/422) in the components' logs"
fi

if [ "$FAILS" -gt 0 ]; then
  log "$FAILS check(s) FAILED; logs:"
  for f in "$WORK"/*.log; do echo "--- $(basename "$f")"; sed 's/\x1b\[[0-9;]*m//g' "$f" | tail -15; done
  exit 1
fi
log "all checks passed"
