#!/usr/bin/env bash
# The agent's resident memory with N Services x E endpoints, measured on the real binary: an API server and
# the agent run inside a network namespace this script creates (the agent programs that namespace's nftables
# only), the Services (no selector) and one EndpointSlice each are written through the API, and the agent's
# VmRSS is read once it has programmed every one of them, then again after a full resync.
# Root. Nothing leaves the namespace; it is deleted on exit, with its processes.
#   cargo build --release -p svcplane && sudo bash crates/bench/scripts/agent-memory.sh [SERVICES] [ENDPOINTS]
set -euo pipefail
N=${1:-10000}
E=${2:-10}
BIN=${SVCPLANE:-$(cd "$(dirname "$0")/../../.." && pwd)/target/release/svcplane}
NS=svcplane-agentmem-$$
DIR=$(mktemp -d)
pids=()
agent=
cleanup() {
  # Under AGENT_WRAPPER the agent is the wrapper's child: stop it by its own pid too.
  for p in "${pids[@]}" $agent; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

ip netns exec "$NS" "$BIN" apiserver --data-dir "$DIR/api" --bind-address 127.0.0.1 --secure-port 6443 >"$DIR/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$DIR/api/kubeconfig" ] && break; sleep 0.1; done

echo "writing $N Services and $N EndpointSlices x $E endpoints..."
start=$(date +%s.%N)
in_ns python3 - "$DIR/api" "$N" "$E" <<'EOF'
import base64, json, ssl, sys, concurrent.futures, urllib.request
d, n, e = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = open(d + "/kubeconfig").read()
# The kubeconfig is YAML written by svcplane: pick the three values this needs without a YAML parser.
def field(name):
    for line in cfg.splitlines():
        s = line.strip()
        if s.startswith(name + ":"):
            return s.split(":", 1)[1].strip().strip('"')
    raise SystemExit("no " + name + " in kubeconfig")
server, token = field("server"), field("token")
ctx = ssl.create_default_context()
ctx.load_verify_locations(cadata=base64.b64decode(field("certificate-authority-data")).decode())
def post(path, obj):
    req = urllib.request.Request(server + path, data=json.dumps(obj).encode(), method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx) as r:
        r.read()
def one(i):
    name = "svc%d" % i
    post("/api/v1/namespaces/default/services",
         {"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    eps = []
    for k in range(e):
        a = i * e + k
        eps.append({"addresses": ["10.%d.%d.%d" % (128 + a // 62500, (a // 250) % 250, a % 250 + 1)],
                    "conditions": {"ready": True}, "nodeName": "node-%d" % (a % 50)})
    post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
         {"metadata": {"name": name + "-1", "labels": {"kubernetes.io/service-name": name}},
          "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": eps})
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    for k, _ in enumerate(pool.map(one, range(n))):
        if (k + 1) % 1000 == 0:
            print("  %d/%d" % (k + 1, n), flush=True)
EOF
echo "written in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"

# AGENT_WRAPPER runs the agent under a profiler, e.g. AGENT_WRAPPER="heaptrack -o /tmp/agent".
ip netns exec "$NS" ${AGENT_WRAPPER:-} "$BIN" agent --node-name node-0 --kubeconfig "$DIR/api/kubeconfig" --announce=false \
  --cluster-cidr 10.128.0.0/9 --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
  --sync-period 20s >"$DIR/agent.log" 2>&1 &
agent=$!
pids+=($agent)
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# Under a wrapper the agent is the wrapper's child.
if [ -n "${AGENT_WRAPPER:-}" ]; then
  for _ in $(seq 100); do
    child=$(pgrep -f -n "$BIN agent --node-name node-0" || true)
    [ -n "$child" ] && [ "$child" != "$agent" ] && { agent=$child; break; }
    sleep 0.1
  done
fi
# The value of the first sample whose name (with labels) is $1; empty while the agent does not answer.
metric() {
  { in_ns curl -s http://127.0.0.1:10249/metrics || true; } | awk -v m="$1" '$1 == m {print $2; exit}'
}
start=$(date +%s.%N)
for _ in $(seq 1200); do
  services=$(metric 'svcplane_agent_services{ip_family="ipv4"}')
  if [ "${services:-0}" -ge "$N" ]; then break; fi
  sleep 0.1
done
echo "agent programmed ${services:-0} Services in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s (from its start)"
echo "agent RSS after the first sync: $(rss "$agent") MiB"
# The periodic full resync comes --sync-period (20 s) after the first: wait for a sync past that point.
t0=$(date +%s)
s0=$(metric svcplane_agent_syncs_total)
for _ in $(seq 300); do
  now=$(metric svcplane_agent_syncs_total)
  if [ $(( $(date +%s) - t0 )) -ge 21 ] && [ "${now:-0}" != "${s0:-0}" ]; then break; fi
  sleep 0.2
done
echo "agent RSS after a periodic full resync: $(rss "$agent") MiB"
