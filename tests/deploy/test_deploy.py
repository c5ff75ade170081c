#!/usr/bin/env python3
"""deploy_manifests: what deploy/ ships works with the stanzad it was built with.

1. deploy/k8s/*.yaml parse, and agree with each other: the StatefulSet's pod names are the
   ConfigMap's peers, its headless Service is the routes' host names, the ports, volumes and
   probes name what exists, the PodDisruptionBudget keeps the majority.
2. Three stanzads run on loopback from the ConfigMap's stanza.yaml and the StatefulSet's own
   arguments (pod name and IP substituted; ports and directories moved to free ones): the
   config is accepted, the liveness path answers, the readiness probe (deploy/stanza-ready) says
   "not ready" while one node is alone and "ready" on the leader and both followers once they
   elect one; a fourth pod started as docs/clustering.md scales up (the ConfigMap without
   clustering.peers) joins as a voter and is ready; a leader stopped with SIGTERM hands the lead
   over and exits within the pod's termination grace period (minus its preStop), and the others
   are ready again.
3. deploy/systemd: the unit passes systemd-analyze verify (that part is skipped, saying so,
   only where the tool is absent), and its shared stanza.yaml with one host's flags starts; it
   is Type=notify, and stanzad tells $NOTIFY_SOCKET READY=1 once it listens and STOPPING=1 when
   SIGTERM starts its shutdown.
4. deploy/Dockerfile's run stage installs the Debian package of every library stanzad and
   stanza link (where dpkg is there to say which).

Environment: STANZAD, STANZA_CLI (the binaries), STANZA_SRC_DIR (the source tree).
"""
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

SRC = os.environ.get("STANZA_SRC_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
DEPLOY = os.path.join(SRC, "deploy")
STANZAD = os.environ["STANZAD"]
READY = os.path.join(DEPLOY, "stanza-ready")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(pred, seconds):
    """pred() until it is true or the deadline passes; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def http_status(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def ready(port):
    """(exit status, line) of deploy/stanza-ready against the monitoring port."""
    env = dict(os.environ, STANZA_MONITOR_URL=f"http://127.0.0.1:{port}")
    p = subprocess.run([READY], env=env, capture_output=True, text=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).strip()


# ---- 1. the manifests -------------------------------------------------------------------------


def load_manifests():
    docs = {}
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        name = os.path.basename(path)
        try:
            with open(path) as f:
                items = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            check(False, f"{name} parses as YAML: {e}")
            continue
        check(len(items) > 0, f"{name} parses as YAML and holds a document")
        for d in items:
            docs.setdefault(d.get("kind"), []).append((name, d))
    return docs


def one(docs, kind, name=None):
    found = [d for _, d in docs.get(kind, []) if name is None or d["metadata"]["name"] == name]
    check(len(found) == 1, f"one {kind}{' ' + name if name else ''}")
    return found[0] if found else None


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_kustomization(docs):
    k = one(docs, "Kustomization")
    files = {os.path.basename(p) for p in glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))}
    check(set(k["resources"]) == files - {"kustomization.yaml"},
          "kustomization.yaml lists every manifest")
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("skip kubectl kustomize: kubectl is not installed")
        return
    p = subprocess.run([kubectl, "kustomize", os.path.join(DEPLOY, "k8s")], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, f"kubectl kustomize deploy/k8s builds: {p.stderr.strip()}")


def check_statefulset(docs):
    """The StatefulSet against the other manifests; returns what the run below needs."""
    sts = one(docs, "StatefulSet")
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    name, n = sts["metadata"]["name"], spec["replicas"]
    check(labels_match(spec["selector"]["matchLabels"], labels), "StatefulSet selects its pods")
    check(spec.get("podManagementPolicy") == "Parallel",
          "pods start in parallel (none is ready before a leader is elected)")
    headless = one(docs, "Service", spec["serviceName"])
    check(headless["spec"].get("clusterIP") == "None", "serviceName is a headless Service")
    check(headless["spec"].get("publishNotReadyAddresses") is True,
          "the headless Service resolves pods before they are ready")
    for _, svc in docs.get("Service", []):
        check(labels_match(svc["spec"]["selector"], labels),
              f"Service {svc['metadata']['name']} selects the pods")
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            check(target in ports.values() or target in ports,
                  f"Service {svc['metadata']['name']} port {p['name']} is a container port")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb["spec"].get("maxUnavailable") == 1, "the PodDisruptionBudget allows one pod down")
    check(labels_match(pdb["spec"]["selector"]["matchLabels"], labels),
          "the PodDisruptionBudget selects the pods")

    cm_vol = [v for v in pod["volumes"] if "configMap" in v][0]
    cm = one(docs, "ConfigMap", cm_vol["configMap"]["name"])
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    conf_path = c["args"][c["args"].index("-c") + 1]
    key = os.path.basename(conf_path)
    check(os.path.dirname(conf_path) == mounts[cm_vol["name"]] and key in cm["data"],
          "-c names the ConfigMap's file where it is mounted")
    conf_text = cm["data"][key]
    conf = yaml.safe_load(conf_text)
    pods = [f"{name}-{i}" for i in range(n)]
    check(conf["clustering"]["peers"] == pods, "clustering.peers are the pods' names")
    listen_port = int(conf["cluster"]["listen"].rsplit(":", 1)[1])
    check(listen_port == ports["routes"], "cluster.listen is the routes container port")
    want = [f"nats://{p}.{headless['metadata']['name']}:{ports['routes']}" for p in pods]
    check(conf["cluster"]["routes"] == want, "routes are every pod's headless-Service name")
    check(conf["http_port"] == ports["monitor"] and conf["port"] == ports["client"],
          "the file's ports are the container's")
    for vct in spec["volumeClaimTemplates"]:
        check(vct["metadata"]["name"] in mounts, f"volume {vct['metadata']['name']} is mounted")
    check(conf["dir"].startswith(mounts["data"] + "/"), "the store is on the data volume")
    check(conf["clustering"]["log_path"].startswith(mounts["raft"] + "/"),
          "the Raft log is on the raft volume")
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    args = c["args"]
    check(env.get("POD_NAME") == "metadata.name" and env.get("POD_IP") == "status.podIP",
          "POD_NAME and POD_IP come from the downward API")
    check(args[args.index("--cluster_node_id") + 1] == "$(POD_NAME)", "node ID = pod name")
    check(args[args.index("--cluster_raft_listen") + 1] == f"$(POD_IP):{ports['raft']}",
          "Raft listens on the pod IP, the raft container port")
    for probe in ("startupProbe", "livenessProbe"):
        check(c[probe]["httpGet"]["port"] in ("monitor", ports["monitor"]),
              f"{probe} asks the monitoring port")
    cmd = c["readinessProbe"]["exec"]["command"]
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        check(f"COPY deploy/stanza-ready {cmd[0]}" in f.read(),
              "the readiness command is the image's copy of deploy/stanza-ready")
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    check(pre_stop[0] == "sleep", "preStop sleeps")
    return {"conf": conf_text, "conf_path": conf_path, "args": args, "pods": pods,
            "liveness": c["livenessProbe"]["httpGet"]["path"],
            "stop_budget": pod["terminationGracePeriodSeconds"] - int(pre_stop[1])}


# ---- 2. the ConfigMap's configuration, three nodes ------------------------------------------


class Node:
    def __init__(self, tmp, pod, argv):
        self.pod, self.http = pod, free_port()
        self.log = open(os.path.join(tmp, pod + ".log"), "w+")
        d = os.path.join(tmp, pod)
        self.argv = [STANZAD] + argv + [
            "-a", "127.0.0.1", "-p", str(free_port()), "-m", str(self.http),
            "--dir", os.path.join(d, "data", "store"),
            "--cluster_log_path", os.path.join(d, "raft", "log")]
        self.proc = None

    def start(self, extra):
        self.proc = subprocess.Popen(self.argv + extra, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        """SIGTERM; checks that it exits 0 (sanitizer reports make it fail) within 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if not check(self.proc.returncode == 0,
                         f"{self.pod} exits 0 on SIGTERM: {self.proc.returncode}"):
                print(self.tail())
        self.log.close()

    def tail(self):
        self.log.seek(0)
        return "".join(self.log.readlines()[-15:])


def pod_argv(k8s, tmp, pod, conf_name="stanza.yaml"):
    """The StatefulSet's arguments for pod, as Kubernetes expands them, with the config file
    moved to tmp and the Raft port to a free one."""
    conf = os.path.join(tmp, conf_name)
    raft = f"127.0.0.1:{free_port()}"
    out = []
    for a in k8s["args"]:
        a = a.replace("$(POD_NAME)", pod)
        if a.startswith("$(POD_IP):"):
            a = raft
        out.append(conf if a == k8s["conf_path"] else a)
    return out


def ready_all(nodes):
    res = [ready(n.http) for n in nodes]
    return res if all(rc == 0 for rc, _ in res) else None


def voters(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/streaming/clusterz", timeout=1) as r:
            return sorted(p["node_id"] for p in json.load(r)["peers"] if p["voter"])
    except (OSError, ValueError, KeyError):
        return None


def scale_up(k8s, tmp, nodes, leader, routes):
    """docs/clustering.md's scale-up: the ConfigMap without clustering.peers, one more pod on
    empty volumes; it joins, becomes a voter, and is ready."""
    conf = yaml.safe_load(k8s["conf"])
    del conf["clustering"]["peers"]
    with open(os.path.join(tmp, "scaled.yaml"), "w") as f:
        yaml.safe_dump(conf, f)
    pod = f"{k8s['pods'][0].rsplit('-', 1)[0]}-{len(k8s['pods'])}"
    n = Node(tmp, pod, pod_argv(k8s, tmp, pod, "scaled.yaml"))
    nodes.append(n)
    n.start(["--cluster", f"nats://127.0.0.1:{free_port()}", "--routes", routes])
    t0 = time.monotonic()
    want = sorted(k8s["pods"] + [pod])
    joined = wait_for(lambda: voters(leader.http) == want and ready(n.http)[0] == 0, 15)
    check(joined, f"{pod} joins as a voter and is ready in {time.monotonic() - t0:.2f} s: "
                  f"{ready(n.http)[1]}; voters {voters(leader.http)}")


def run_k8s_cluster(k8s, tmp):
    with open(os.path.join(tmp, "stanza.yaml"), "w") as f:
        f.write(k8s["conf"])
    cports = [free_port() for _ in k8s["pods"]]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in cports)
    nodes = [Node(tmp, pod, pod_argv(k8s, tmp, pod)) for pod in k8s["pods"]]

    def start(i):
        nodes[i].start(["--cluster", f"nats://127.0.0.1:{cports[i]}", "--routes", routes])

    try:
        start(0)
        first = nodes[0]
        up = wait_for(lambda: http_status(first.http, k8s["liveness"]) == 200, 5)
        if not check(up, f"{first.pod} starts on the ConfigMap's stanza.yaml; "
                         f"{k8s['liveness']} answers 200"):
            print(first.tail())
            return
        rc, line = ready(first.http)
        check(rc == 1 and "no leader" in line, f"alone, {first.pod} is not ready: {line}")
        for i in range(1, len(nodes)):
            start(i)
        t0 = time.monotonic()
        res = wait_for(lambda: ready_all(nodes), 15)
        if not check(res is not None, "all three become ready"):
            for n in nodes:
                print(n.pod, ready(n.http), n.tail())
            return
        print(f"     ready in {time.monotonic() - t0:.2f} s: {[line for _, line in res]}")
        leaders = [n for n, (_, line) in zip(nodes, res) if line.startswith("ready: leader")]
        check(len(leaders) == 1 and all(
            line.startswith("ready: follower of " + leaders[0].pod)
            for n, (_, line) in zip(nodes, res) if n is not leaders[0]),
            "one leader, two followers of it")
        if len(leaders) != 1:
            return
        leader = leaders[0]
        scale_up(k8s, tmp, nodes, leader, routes)
        t0 = time.monotonic()
        leader.proc.send_signal(signal.SIGTERM)
        try:
            rc = leader.proc.wait(k8s["stop_budget"])
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        check(rc == 0, f"the leader exits 0 on SIGTERM within the grace period less preStop "
                       f"({k8s['stop_budget']} s): {took:.2f} s")
        rest = [n for n in nodes if n is not leader]
        res = wait_for(lambda: ready_all(rest), 10)
        check(res is not None and any(line.startswith("ready: leader") for _, line in res),
              f"the others are ready with a new leader: {res}")
        leader.log.seek(0)
        check("lead handed to" in leader.log.read(), "the stopping leader handed the lead over")
        if rc != 0:
            print(leader.tail())
    finally:
        for n in nodes:
            n.stop()


# ---- 3. systemd -------------------------------------------------------------------------------


def check_systemd(tmp):
    unit = os.path.join(DEPLOY, "systemd", "stanzad.service")
    with open(unit) as f:
        text = f.read()
    exec_start = [l for l in text.splitlines() if l.startswith("ExecStart=")][0]
    binary = exec_start.split("=", 1)[1].split()[0]
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("skip systemd-analyze verify: systemd-analyze is not installed")
    else:
        # verify also checks that ExecStart's program exists: point it at the built one.
        copy = os.path.join(tmp, "stanzad.service")
        with open(copy, "w") as f:
            f.write(text.replace(binary, os.path.abspath(STANZAD)))
        p = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=30)
        out = (p.stdout + p.stderr).strip()
        check(p.returncode == 0 and not out, f"systemd-analyze verify stanzad.service: {out}")
    # The shared file and host a's flags, moved to loopback and free ports.
    conf = exec_start.split("-c", 1)[1].split()[0]
    with open(os.path.join(DEPLOY, "systemd", "stanzad.default")) as f:
        opts = [l for l in f if l.startswith("STANZA_OPTS=")][0].split("=", 1)[1]
    # As systemd reads it: the file's quotes removed, then $STANZA_OPTS split at spaces.
    argv = ["-c", os.path.join(DEPLOY, "systemd", os.path.basename(conf))]
    for a in shlex.split(opts)[0].split():
        argv.append(f"127.0.0.1:{free_port()}" if a.endswith(":7000") else a)
    n = Node(tmp, "host-a", argv)
    try:
        cport = free_port()
        n.start(["--cluster", f"nats://127.0.0.1:{cport}", "--routes",
                 f"nats://127.0.0.1:{cport}"])
        up = wait_for(lambda: http_status(n.http, "/") == 200, 5)
        if not check(up, "deploy/systemd/stanza.yaml with host a's flags starts"):
            print(n.tail())
        rc, line = ready(n.http)
        check(rc == 1 and "no leader" in line, f"host a alone is not ready: {line}")
    finally:
        n.stop()


# ---- 4. the image's libraries ---------------------------------------------------------------


def check_image_libraries():
    dpkg = shutil.which("dpkg")
    if not dpkg:
        print("skip the Dockerfile's library list: dpkg is not installed")
        return
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        run_stage = f.read().split("FROM debian:12-slim", 1)[1]
    installed = set(run_stage.split("apt-get install", 1)[1].split("&&", 1)[0].split())
    # The sanitizers' and compiler's runtimes are the test build's, not the image's.
    ignore = ("libc6", "libasan", "libubsan", "liblsan", "libgcc-s", "libstdc++")
    for binary in filter(None, (STANZAD, os.environ.get("STANZA_CLI"))):
        # The libraries it names itself (apt brings theirs), where the loader finds them.
        dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True).stdout
        needed = {l.split("[", 1)[1].split("]")[0] for l in dyn.splitlines() if "(NEEDED)" in l}
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        paths = {}
        for parts in (line.split() for line in ldd.splitlines()):
            if len(parts) >= 3 and parts[0] in needed and parts[1] == "=>":
                # dpkg knows a file by the path it installed: the link (libc.so.6 in /lib) or
                # what it points to (libuv.so.1.0.0 in /usr/lib).
                paths[parts[0]] = (parts[2], os.path.realpath(parts[2]))
        check(set(paths) == needed, f"ldd finds every library {binary} needs")
        # One dpkg -S for all (each call costs a quarter of a second): "pkg:arch: path" lines.
        out = subprocess.run([dpkg, "-S"] + sorted({p for v in paths.values() for p in v}),
                             capture_output=True, text=True).stdout
        owner = {l.split(": ", 1)[1]: l.split(":")[0] for l in out.splitlines() if ": " in l}
        for soname, (path, real) in sorted(paths.items()):
            pkg = owner.get(path) or owner.get(real, "")
            if check(bool(pkg), f"dpkg knows {soname}'s package ({path})") and \
                    not pkg.startswith(ignore):
                check(pkg in installed,
                      f"the image installs {pkg} ({os.path.basename(binary)} links {soname})")


def check_ready_catching_up():
    """stanza-ready on a follower whose own commit index has reached what it applied, while the
    leader has committed far more (a node catching up after a restart: its commit index only
    reaches what it has received): not ready, until it has applied to within the lag allowed.
    A monitoring port that answers these states is served here, as a real node's would."""
    import http.server
    import threading

    state = {"applied": 100}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz":
                body = b'{"status": "ok"}'
            else:
                body = json.dumps({"role": "Follower", "leading": False, "raft": {
                    "leader": "stanza-0", "term": 3, "commit_index": state["applied"],
                    "applied_index": state["applied"], "leader_commit_index": 5000}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        rc, line = ready(port)
        check(rc == 1 and "4900 committed entries to apply" in line,
              f"a follower 4900 entries behind the leader's commit is not ready: {line}")
        state["applied"] = 4500
        rc, line = ready(port)
        check(rc == 0 and line.startswith("ready: follower of stanza-0"),
              f"within the lag allowed (1000) it is ready: {line}")
    finally:
        srv.shutdown()


def check_huge_pages():
    """The unit and the image run stanzad with glibc's huge-pages tunable (docs/operations.md),
    and a stanzad started with it keeps it and runs."""
    tunable = "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
    with open(os.path.join(DEPLOY, "systemd", "stanzad.service")) as f:
        check(f"Environment={tunable}" in f.read().splitlines(),
              "the systemd unit sets " + tunable)
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        check(f"ENV {tunable}" in f.read().splitlines(), "the image sets " + tunable)
    port = free_port()
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    p = subprocess.Popen([STANZAD, "-a", "127.0.0.1", "-p", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up = wait_for(lambda: port_open(port), 10)
        check(up, "stanzad with the tunable listens")
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            check(b"glibc.malloc.hugetlb=1" in f.read(), "and runs with it")
    finally:
        p.send_signal(signal.SIGTERM)
        check(p.wait(timeout=10) == 0, "and stops with exit 0 on SIGTERM")


def check_sd_notify(tmp):
    """The unit is Type=notify, and stanzad speaks the protocol: READY=1 on the socket named by
    $NOTIFY_SOCKET once its client port listens, STOPPING=1 when a SIGTERM starts the stop."""
    with open(os.path.join(DEPLOY, "systemd", "stanzad.service")) as f:
        check("Type=notify" in f.read().splitlines(), "the systemd unit is Type=notify")
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    port = free_port()
    p = subprocess.Popen([STANZAD, "-a", "127.0.0.1", "-p", str(port)],
                         env=dict(os.environ, NOTIFY_SOCKET=path),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def next_state():
        try:
            return sock.recv(4096).decode().split("\n")
        except socket.timeout:
            return []

    try:
        state = next_state()
        check("READY=1" in state, f"stanzad notifies READY=1 (got {state})")
        check(port_open(port), "after its client port listens")
        p.send_signal(signal.SIGTERM)
        state = next_state()
        check("STOPPING=1" in state, f"and STOPPING=1 on SIGTERM (got {state})")
        check(p.wait(timeout=10) == 0, "then exits 0")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()


def main():
    t0 = time.monotonic()
    docs = load_manifests()
    check_ready_catching_up()
    check_huge_pages()
    check_kustomization(docs)
    k8s = check_statefulset(docs)
    tmp = tempfile.mkdtemp(prefix="stanza-deploy-")
    try:
        run_k8s_cluster(k8s, tmp)
        check_systemd(tmp)
        check_sd_notify(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check_image_libraries()
    print(f"{len(failures)} failure(s) in {time.monotonic() - t0:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
