#!/usr/bin/env python3
"""The deployment's files against the Kubernetes schemas and against the server itself.

- deploy/k8s, rendered by kustomize (base and every overlay), validated offline against the Kubernetes
  schemas (kubernetes-validate, strict: no unknown fields) for the oldest and newest versions it covers here;
- every environment variable the manifests and docker-compose.yml set is a `tripstream serve` setting (its
  `--help` lists `[env: NAME]`), and every setting a deployment needs is set;
- the numbers that must agree do: grace periods, timeouts against the keep-alive interval, body limits,
  probes and ports, and memory against the measured cost of a stream.

Prints one line per check and `N passed, M failed`; exits 1 on a failure.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# Set by a deployment of more than one replica: the shared cache and stream logs, and the shared run log.
DEPLOYMENT_REQUIRED = {"REDIS_URL", "DATABASE_URL"}
# Streams one replica is sized for (deployment.yaml's comment), and the process's own share.
STREAMS_PER_REPLICA = 2000
BASE_MIB = 64

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok" if ok else "not ok") + f" - {name}" + ("" if ok or not detail else f": {detail}"))


def binary():
    if os.environ.get("TRIPSTREAM_BIN"):
        return os.environ["TRIPSTREAM_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str((ROOT / target if not target.is_absolute() else target) / "debug" / "tripstream")


def serve_settings():
    """`tripstream serve --help` as {env name: (flag, default or None)}, and the env names of required flags."""
    text = subprocess.run([binary(), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    settings, flag = {}, None
    for line in text.splitlines():
        if m := re.match(r"^\s+(?:-\w, )?(--[\w-]+)", line):
            flag = m.group(1)
        if flag and (m := re.search(r"\[env: ([A-Z0-9_]+)(?:=[^\]]*)?\]", line)):
            settings[m.group(1)] = [flag, None]
        if flag and (m := re.search(r"\[default: ([^\]]*)\]", line)):
            for value in settings.values():
                if value[0] == flag:
                    value[1] = m.group(1)
    usage = next(line for line in text.splitlines() if line.startswith("Usage:"))
    required_flags = set(re.findall(r"(?<!\[)(--[\w-]+) <", re.sub(r"\[[^\]]*\]", "", usage)))
    required = {env for env, (f, _) in settings.items() if f in required_flags}
    return {env: value for env, value in settings.items()}, required


def render(directory):
    try:
        out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit("kubectl is not installed: its `kustomize` renders deploy/k8s (machines of this kind have it)")
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {directory} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def seconds(value):
    m = re.fullmatch(r"(\d+)(s|m)?", str(value).strip())
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def mib(quantity):
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)", quantity)
    n, unit = int(m.group(1)), m.group(2)
    return {"Mi": n, "Gi": n * 1024, "M": n * 1e6 / 2**20, "G": n * 1e9 / 2**20}[unit]


def worst_stream_kib():
    """The largest memory-per-stream figure of the paced benchmark's first table (BENCHMARKS.md)."""
    table = (ROOT / "BENCHMARKS.md").read_text().split("| streams | errors |", 1)[1].split("\n\n", 1)[0]
    figures = [int(n) for row in table.splitlines()[2:] for n in re.findall(r"(\d+)", row.split("|")[-2])]
    return max(figures)


def main():
    settings, clap_required = serve_settings()
    known = set(settings)
    default = lambda env: settings[env][1]  # noqa: E731
    versions = [v for v in kubernetes_validate.utils.all_versions() if re.fullmatch(r"1\.\d+\.\d+", v)]
    versions.sort(key=lambda v: tuple(int(x) for x in v.split(".")))
    # The oldest Kubernetes with every field used here (1.30), and the newest the package knows.
    targets = [v for v in versions if v.startswith("1.30.")][:1] + versions[-1:]

    overlays = [K8S / "base"] + sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())
    body_limit = re.search(r"BODY_LIMIT: usize = (\d+) \* (\d+);", (ROOT / "crates/server/src/extract.rs").read_text())
    body_limit = int(body_limit.group(1)) * int(body_limit.group(2))
    for directory in overlays:
        where = directory.relative_to(ROOT)
        docs = render(directory)
        for doc in docs:
            what = f"{where}: {doc['kind']} {doc['metadata']['name']}"
            for version in targets:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                    check(f"{what} is valid for Kubernetes {version}", True)
                except kubernetes_validate.utils.ValidationError as e:
                    check(f"{what} is valid for Kubernetes {version}", False, f"{e.message} at {list(e.path)}")

        by_kind = lambda kind: [d for d in docs if d["kind"] == kind]  # noqa: E731
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind("ConfigMap")}
        (deployment,) = by_kind("Deployment")
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        values = {}
        for source in container.get("envFrom", []):
            values.update(config_maps[source["configMapRef"]["name"]])
        values.update({k: e.get("value") for k, e in env.items()})
        unknown = sorted(set(values) - known)
        check(f"{where}: every variable set is a `tripstream serve` setting", not unknown, ", ".join(unknown))
        missing = sorted((clap_required | DEPLOYMENT_REQUIRED) - set(values))
        check(f"{where}: every required setting is set", not missing, ", ".join(missing))
        optional_secrets = [k for k, e in env.items() if e.get("valueFrom", {}).get("secretKeyRef", {}).get("optional")]
        check(f"{where}: required settings come from a Secret that must exist",
              not (set(optional_secrets) & DEPLOYMENT_REQUIRED), ", ".join(optional_secrets))

        setting = lambda name: values.get(name) or default(name)  # noqa: E731
        shutdown = int(setting("SHUTDOWN_GRACE_SECS"))
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        pause = int(pre_stop[1]) if pre_stop[0] == "sleep" else 0
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        # The run log's flush takes up to 10 s, the traces' up to 5 s (commands/serve.rs, startup.rs).
        check(f"{where}: terminationGracePeriodSeconds ({grace}) > preStop ({pause}) + SHUTDOWN_GRACE_SECS "
              f"({shutdown}) + flushes (15)", grace > pause + shutdown + 15)
        probes = {p: container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
        check(f"{where}: probes on /health/live and /health/ready",
              probes == {"startupProbe": "/health/live", "livenessProbe": "/health/live",
                         "readinessProbe": "/health/ready"}, str(probes))
        port = int(setting("PORT"))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        check(f"{where}: the container port is PORT ({port})", ports.get("http") == port, str(ports))
        metrics_port = int(setting("METRICS_ADDR").rsplit(":", 1)[1])
        check(f"{where}: the metrics port is METRICS_ADDR's ({metrics_port}), and Prometheus scrapes it",
              ports.get("metrics") == metrics_port
              and pod["metadata"]["annotations"].get("prometheus.io/port") == str(metrics_port), str(ports))
        labels = pod["metadata"]["labels"]
        selects = lambda selector: all(labels.get(k) == v for k, v in selector.items())  # noqa: E731
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            for d in by_kind(kind):
                selector = d["spec"].get("selector") or d["spec"].get("podSelector")
                check(f"{where}: {kind} {d['metadata']['name']} selects the pods",
                      selects(selector.get("matchLabels", selector)))
        (hpa,) = by_kind("HorizontalPodAutoscaler")
        check(f"{where}: the HPA scales the Deployment, from at least 2",
              hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
              and hpa["spec"]["minReplicas"] >= 2 and "replicas" not in deployment["spec"])

        worst = worst_stream_kib()
        needed = BASE_MIB + STREAMS_PER_REPLICA * worst / 1024
        resources = container["resources"]
        request, limit = mib(resources["requests"]["memory"]), mib(resources["limits"]["memory"])
        check(f"{where}: memory request {request:.0f} MiB holds {STREAMS_PER_REPLICA} streams at the measured "
              f"{worst} KiB each plus {BASE_MIB} MiB ({needed:.0f} MiB)", needed <= request <= limit)

        keep_alive = int(setting("KEEP_ALIVE_SECS"))
        generation = int(setting("GENERATION_TIMEOUT_SECS"))
        for ingress in by_kind("Ingress"):
            notes = ingress["metadata"]["annotations"]
            read = int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"])
            paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
            floor = generation if paths == ["/api/v1/plans/generate"] else keep_alive
            check(f"{where}: Ingress {ingress['metadata']['name']} waits {read} s for a byte, longer than "
                  f"{floor} s", read > floor)
            size = notes["nginx.ingress.kubernetes.io/proxy-body-size"]
            check(f"{where}: Ingress {ingress['metadata']['name']} takes bodies up to the server's {body_limit} "
                  "bytes", int(size.rstrip("k")) * 1024 == body_limit, size)
            if paths != ["/api/v1/plans/generate"]:
                check(f"{where}: Ingress {ingress['metadata']['name']} does not buffer",
                      notes.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off")

    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    (deployment,) = [d for d in render(K8S / "base") if d["kind"] == "Deployment"]
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    check("the Deployment runs as the image's user", (security["runAsUser"], security["runAsGroup"])
          == (int(user.group(1)), int(user.group(2))))

    # docker-compose.yml, as compose itself resolves it.
    compose = json.loads(subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                                         "--format", "json"], capture_output=True, text=True, check=True).stdout)
    service = compose["services"]["tripstream"]
    environment = service["environment"]
    unknown = sorted(set(environment) - known)
    check("docker-compose.yml: every variable set is a `tripstream serve` setting", not unknown, ", ".join(unknown))
    missing = sorted((clap_required | DEPLOYMENT_REQUIRED) - set(environment))
    check("docker-compose.yml: every required setting is set", not missing, ", ".join(missing))
    check("docker-compose.yml: two replicas", service["deploy"]["replicas"] == 2)
    shutdown = int(environment.get("SHUTDOWN_GRACE_SECS") or default("SHUTDOWN_GRACE_SECS"))
    stop = seconds(service["stop_grace_period"])
    check(f"docker-compose.yml: stop_grace_period ({stop} s) > SHUTDOWN_GRACE_SECS ({shutdown}) + flushes (15)",
          stop > shutdown + 15)
    worst = worst_stream_kib()
    memory = int(service["deploy"]["resources"]["limits"]["memory"]) / 2**20
    check(f"docker-compose.yml: memory limit ({memory:.0f} MiB) holds {STREAMS_PER_REPLICA} streams",
          memory >= BASE_MIB + STREAMS_PER_REPLICA * worst / 1024)
    nginx = compose["services"]["nginx"]
    check("docker-compose.yml: nginx runs deploy/nginx/tripstream.conf",
          any(v["source"].endswith("deploy/nginx/tripstream.conf") for v in nginx["volumes"]))

    # deploy/nginx/tripstream.conf's numbers.
    conf = (ROOT / "deploy/nginx/tripstream.conf").read_text()
    keep_alive = int(default("KEEP_ALIVE_SECS"))
    streams = re.search(r"location /api/v1/plans/ \{(.*?)\n    \}", conf, re.S).group(1)
    json_endpoint = re.search(r"location = /api/v1/plans/generate \{(.*?)\n    \}", conf, re.S).group(1)
    read = seconds(re.search(r"proxy_read_timeout (\w+);", streams).group(1))
    check(f"nginx: streams wait {read} s for a byte, longer than KEEP_ALIVE_SECS ({keep_alive})", read > keep_alive)
    check("nginx: streams are not buffered", "proxy_buffering off;" in streams)
    read = seconds(re.search(r"proxy_read_timeout (\w+);", json_endpoint).group(1))
    generation = int(default("GENERATION_TIMEOUT_SECS"))
    check(f"nginx: the JSON endpoint waits {read} s, longer than GENERATION_TIMEOUT_SECS ({generation})",
          read > generation)
    size = re.search(r"client_max_body_size (\d+)k;", conf).group(1)
    check(f"nginx: bodies up to the server's {body_limit} bytes", int(size) * 1024 == body_limit)

    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
