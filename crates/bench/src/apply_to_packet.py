# Runs inside a lab pod: for each try, creates a Service (fixed clusterIP, selecting the lab's ready pods)
# through the API and connects to it until a request succeeds; prints one duration (ms) per line.
# argv: kubeconfig tries
import base64, http.client, json, re, select, socket, ssl, sys, tempfile, time

kubeconfig = open(sys.argv[1]).read()
tries = int(sys.argv[2])
server = re.search(r"server: https://([^\s]+)", kubeconfig).group(1)
host, port = server.rsplit(":", 1)
ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", kubeconfig).group(1))
token = re.search(r"token: (\S+)", kubeconfig).group(1)
ca_file = tempfile.NamedTemporaryFile(delete=False)
ca_file.write(ca)
ca_file.close()
ctx = ssl.create_default_context(cafile=ca_file.name)
ctx.check_hostname = False
api = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

def request(method, path, body=None):
    api.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    r = api.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:200]))

def reachable(ip, deadline):
    # Non-blocking connect with a 2 ms wait: before the rules exist, SYNs to the range are dropped.
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex((ip, 80))
            _, w, _ = select.select([], [s], [], 0.002)
            if w and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                s.setblocking(True)
                s.settimeout(1)
                s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1"):
                    return True
            else:
                time.sleep(0.0005)
        except OSError:
            time.sleep(0.0005)
        finally:
            s.close()
    return False

for i in range(tries):
    ip = "10.96.200.%d" % (10 + i % 200)
    name = "bench-%d" % i
    start = time.monotonic()
    request("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"clusterIP": ip, "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": "http"}]}})
    if not reachable(ip, start + 10):
        raise SystemExit("try %d: %s never answered" % (i, ip))
    print("%.3f" % ((time.monotonic() - start) * 1000), flush=True)
    request("DELETE", "/api/v1/namespaces/default/services/" + name)
    # Wait until the address is dropped again, so the next try starts from nothing.
    while reachable(ip, time.monotonic() + 0.01):
        time.sleep(0.005)
