"""deploy/k8s: the manifests agree with each other, with the Dockerfile and with herald (selectors, ports, probes,
grace period vs drain, resources), and the ConfigMap's JSON is a config the real binary starts and drains with.

check_manifests() is pure (documents in, list of "expected …, got …" errors out), so it is also run on broken copies
to show that it catches each kind of mistake.
"""
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from harness import HOST, HeraldTestCase, _die_with_parent, herald_binary, http_request, open_ws_raw

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
FAKE_POD_NAME = "herald-5d8f7c9b6-x2k4q"  # what fieldRef metadata.name gives a pod of the Deployment
READY_TIMEOUT = 15.0


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------

def manifest_files(directory=K8S_DIR):
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.name != "kustomization.yaml")


def load_manifests(directory=K8S_DIR):
    """→ [(file name, document)] for every Kubernetes object in the directory (kustomization.yaml excluded)."""
    docs = []
    for path in manifest_files(directory):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((path.name, doc))
    return docs


def herald_defaults(binary):
    """Defaults the checker needs, read from `herald --help` so they follow the binary."""
    r = subprocess.run([binary, "--help"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL,
                       env={k: v for k, v in os.environ.items() if not k.startswith("HERALD_")})
    text = r.stdout.decode()
    drain = re.search(r"--drain-timeout SECONDS\s+.*\(default ([0-9.]+)\)", text)
    listen = re.search(r"--listen HOST:PORT\s+.*\(default ([^)\s]+)\)", text)
    if r.returncode != 0 or not drain or not listen:
        raise AssertionError(f"`herald --help`: expected exit 0 and '(default N)' for --drain-timeout and --listen, "
                             f"got exit {r.returncode}, output:\n{text[:2000]}")
    return {"drain_timeout": float(drain.group(1)), "listen": listen.group(1)}


def dockerfile_facts(path=DOCKERFILE):
    """The runtime user id and the entrypoint the pod must agree with."""
    text = path.read_text()
    uid = re.search(r"--uid\s+(\d+)", text)
    entrypoint = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.M)
    if not uid or not entrypoint:
        raise AssertionError(f"{path}: expected `useradd … --uid N` and an exec-form ENTRYPOINT, got uid={uid} "
                             f"entrypoint={entrypoint}")
    return {"uid": int(uid.group(1)), "entrypoint": json.loads(entrypoint[-1])}


# ----------------------------------------------------------------------------------------------------------------
# The checker
# ----------------------------------------------------------------------------------------------------------------

def _name(doc):
    return f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"


def _matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resolve_port(port, container):
    """A probe's or Service's port (name or number) → the container port it reaches, or None."""
    for p in container.get("ports", []):
        if port == p.get("name") or port == p.get("containerPort"):
            return p.get("containerPort")
    return None


def _flag_values(argv):
    """herald flags given on the command line: --name value or --name=value → {name: value}."""
    out = {}
    i = 0
    while i < len(argv):
        arg = str(argv[i])
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and i + 1 < len(argv) and not str(argv[i + 1]).startswith("--"):
                value = str(argv[i + 1])
                i += 1
            out[name] = value
        i += 1
    return out


def _plain_env(container):
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def effective_option(container, config, name, default):
    """An option as herald will see it in the pod: flag > HERALD_* env > config file > default."""
    flags = _flag_values(list(container.get("command", [])[1:]) + list(container.get("args", [])))
    if name in flags:
        return flags[name], f"flag --{name}"
    env_name = "HERALD_" + name.upper().replace("-", "_")
    for e in container.get("env", []):
        optional = any(ref.get("optional") for ref in e.get("valueFrom", {}).values() if isinstance(ref, dict))
        if e.get("name") == env_name and not optional:  # an optional Secret may be absent: the file must do alone
            return e.get("value", e.get("valueFrom")), f"env {env_name}"
    key = name.replace("-", "_")
    if key in config:
        return config[key], f"ConfigMap key {key!r}"
    return default, "herald's default"


def prestop_sleep_seconds(container):
    """Seconds the preStop hook sleeps, or None when there is no sleeping preStop."""
    hook = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in hook:
        return float(hook["sleep"].get("seconds", 0))
    command = [str(c) for c in hook.get("exec", {}).get("command", [])]
    for i, word in enumerate(command):
        m = re.search(r"(?:^|[\s/])sleep\s+([0-9.]+)", word)
        if m:
            return float(m.group(1))
        if word.rsplit("/", 1)[-1] == "sleep" and i + 1 < len(command):
            try:
                return float(command[i + 1])
            except ValueError:
                return None
    return None


def config_file_of(deployment_doc, container, docs):
    """Follows HERALD_CONFIG (or --config) through the volume mounts to the ConfigMap key it names.

    → (path in the pod, ConfigMap name, key, mount path, [errors])."""
    where = f"{_name(deployment_doc)} container {container.get('name')}"
    flags = _flag_values(list(container.get("command", [])[1:]) + list(container.get("args", [])))
    path = flags.get("config") or _plain_env(container).get("HERALD_CONFIG")
    if not path:
        return None, None, None, None, [f"{where}: expected HERALD_CONFIG (or --config) naming the mounted JSON, "
                                        f"got neither"]
    volumes = {v.get("name"): v for v in deployment_doc["spec"]["template"]["spec"].get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount.get("name"), {})
        if "configMap" not in volume:
            continue
        cm_name = volume["configMap"].get("name")
        mount_path = mount["mountPath"].rstrip("/")
        if mount.get("subPath"):
            if path != mount_path:
                continue
            file_in_volume = mount["subPath"]
        elif path.startswith(mount_path + "/"):
            file_in_volume = path[len(mount_path) + 1:]
        else:
            continue
        items = volume["configMap"].get("items")
        key = file_in_volume if not items else next((i["key"] for i in items if i["path"] == file_in_volume), None)
        configmaps = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "ConfigMap"}
        if key is None or cm_name not in configmaps or key not in configmaps[cm_name].get("data", {}):
            return path, cm_name, key, mount_path, [
                f"{where}: HERALD_CONFIG={path}: expected a key of ConfigMap {cm_name} mounted there, got key {key!r}"
                f" (ConfigMaps here: {sorted(configmaps)}, keys: "
                f"{sorted(configmaps.get(cm_name, {}).get('data', {}))})"]
        return path, cm_name, key, mount_path, []
    return path, None, None, None, [f"{where}: HERALD_CONFIG={path}: expected a ConfigMap volume mounted at it or at "
                                    f"its directory, got mounts {container.get('volumeMounts', [])}"]


def check_manifests(docs, defaults, docker):
    """Every consistency rule; returns a list of "where: expected …, got …" strings (empty when all hold)."""
    errors = []

    def expect(ok, where, expected, got):
        if not ok:
            errors.append(f"{where}: expected {expected}, got {got}")

    for file, d in docs:
        expect(all(k in d for k in ("apiVersion", "kind", "metadata")) and d.get("metadata", {}).get("name"),
               file, "apiVersion, kind and metadata.name", {k: d.get(k) for k in ("apiVersion", "kind", "metadata")})
    by_kind = {}
    for _, d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap"):
        expect(kind in by_kind, "manifests", f"at least one {kind}", sorted(k for k in by_kind if k))
    deployments = by_kind.get("Deployment", [])
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    hpa_min = {}
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        where = _name(h)
        spec = h.get("spec", {})
        target = spec.get("scaleTargetRef", {})
        expect(h.get("apiVersion") == "autoscaling/v2", where, "apiVersion autoscaling/v2", h.get("apiVersion"))
        expect(target.get("kind") == "Deployment" and target.get("apiVersion") == "apps/v1"
               and target.get("name") in {d["metadata"]["name"] for d in deployments},
               where, f"scaleTargetRef naming one of the Deployments {[d['metadata']['name'] for d in deployments]}",
               target)
        expect(isinstance(spec.get("minReplicas"), int) and spec["minReplicas"] >= 3, where, "minReplicas ≥ 3",
               spec.get("minReplicas"))
        expect(spec.get("maxReplicas", 0) >= spec.get("minReplicas", 1), where, "maxReplicas ≥ minReplicas",
               (spec.get("minReplicas"), spec.get("maxReplicas")))
        cpu = [m for m in spec.get("metrics", []) if m.get("type") == "Resource"
               and m.get("resource", {}).get("name") == "cpu"
               and m["resource"].get("target", {}).get("type") == "Utilization"]
        expect(cpu, where, "a Resource cpu metric with target type Utilization", spec.get("metrics"))
        hpa_min[target.get("name")] = spec.get("minReplicas")

    pod_labels_all = []
    for dep in deployments:
        where = _name(dep)
        spec = dep.get("spec", {})
        template = spec.get("template", {})
        pod_labels = template.get("metadata", {}).get("labels", {})
        pod_labels_all.append((dep, pod_labels))
        pod_spec = template.get("spec", {})
        selector = spec.get("selector", {})
        expect(not selector.get("matchExpressions"), where, "a matchLabels selector (the check reads only those)",
               selector)
        expect(_matches(selector.get("matchLabels", {}), pod_labels), where + " selector",
               f"matchLabels contained in the pod template labels {pod_labels}", selector.get("matchLabels"))
        name = dep["metadata"]["name"]
        if name in hpa_min and "replicas" in spec:
            expect(spec["replicas"] == hpa_min[name], where, f"replicas equal to the HPA's minReplicas "
                   f"{hpa_min[name]} (README.md: what a re-apply does)", spec["replicas"])
        expect(pod_spec.get("enableServiceLinks") is False, where, "enableServiceLinks: false (a Service named "
               "herald would inject HERALD_* variables that herald reads as options)",
               pod_spec.get("enableServiceLinks"))
        psc = pod_spec.get("securityContext", {})
        expect(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == docker["uid"], where + " securityContext",
               f"runAsNonRoot true and runAsUser {docker['uid']} (the Dockerfile's user)",
               {k: psc.get(k) for k in ("runAsNonRoot", "runAsUser")})
        containers = pod_spec.get("containers", [])
        expect(containers, where, "at least one container", containers)
        for c in containers:
            cw = f"{where} container {c.get('name')}"
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                expect(all(r in resources.get(part, {}) for r in ("cpu", "memory")), cw, f"resources.{part} with cpu "
                       f"and memory", resources.get(part))
            csc = c.get("securityContext", {})
            expect(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False, cw,
                   "readOnlyRootFilesystem true and allowPrivilegeEscalation false",
                   {k: csc.get(k) for k in ("readOnlyRootFilesystem", "allowPrivilegeEscalation")})
        herald = next((c for c in containers if c.get("command", [None])[0] == docker["entrypoint"][0]), None)
        expect(herald is not None, where, f"a container whose command is the image's entrypoint "
               f"{docker['entrypoint'][0]} (without `command`, the image's CMD flags would override the ConfigMap)",
               [c.get("command") for c in containers])
        if herald is None:
            continue
        cw = f"{where} container {herald.get('name')}"
        path, cm_name, key, _, config_errors = config_file_of(dep, herald, docs)
        errors.extend(config_errors)
        config = {}
        if not config_errors:
            try:
                config = json.loads(configmaps[cm_name]["data"][key])
            except ValueError as e:
                errors.append(f"ConfigMap {cm_name} key {key}: expected JSON, got {e}")
            expect(isinstance(config, dict), f"ConfigMap {cm_name} key {key}", "a JSON object", type(config).__name__)
            if not isinstance(config, dict):
                config = {}
        listen, listen_from = effective_option(herald, config, "listen", defaults["listen"])
        listen_port = int(str(listen).rpartition(":")[2]) if re.search(r":\d+$", str(listen)) else None
        http_ports = [p.get("containerPort") for p in herald.get("ports", []) if p.get("name") == "http"]
        expect(http_ports == [listen_port], cw, f"one container port named http equal to herald's listen port "
               f"{listen_port} ({listen_from}: {listen})", herald.get("ports"))
        for probe, path_expected in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = herald.get(probe, {}).get("httpGet", {})
            expect(get.get("path") == path_expected, f"{cw} {probe}", f"httpGet path {path_expected}", get or None)
            expect(get.get("port") is not None and _resolve_port(get.get("port"), herald) == listen_port,
                   f"{cw} {probe}", f"a port (name or number) resolving to container port {listen_port}",
                   f"port {get.get('port')!r} → {_resolve_port(get.get('port'), herald)}")
        annotations = template.get("metadata", {}).get("annotations", {})
        expect(annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/path") ==
               "/metrics" and annotations.get("prometheus.io/port") == str(listen_port), where + " pod annotations",
               f"prometheus.io/scrape 'true', path '/metrics', port '{listen_port}'",
               {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")})
        node_name = [e for e in herald.get("env", []) if e.get("name") == "HERALD_NODE_NAME"]
        expect(len(node_name) == 1 and node_name[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") ==
               "metadata.name", cw, "env HERALD_NODE_NAME from fieldRef metadata.name", node_name)
        drain, drain_from = effective_option(herald, config, "drain-timeout", defaults["drain_timeout"])
        try:
            drain = float(drain)
        except (TypeError, ValueError):
            errors.append(f"{cw}: expected a numeric drain timeout, got {drain!r} ({drain_from})")
            drain = None
        sleep = prestop_sleep_seconds(herald)
        expect(sleep is not None, cw, "a preStop hook that sleeps (exec sleep N, or sleep.seconds)",
               herald.get("lifecycle"))
        grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        if drain is not None and sleep is not None:
            expect(grace > drain + sleep, where, f"terminationGracePeriodSeconds > drain timeout {drain:g} s "
                   f"({drain_from}) + preStop sleep {sleep:g} s = {drain + sleep:g} s", grace)
        redis, redis_from = effective_option(herald, config, "redis", None)
        if isinstance(redis, str):
            host = urlsplit(redis).hostname or ""
            expect("." in host or host in services, cw, f"the Redis host of {redis_from} to be a DNS name or a "
                   f"Service defined here {sorted(services)}", host)

    for s in services.values():
        where = _name(s)
        spec = s.get("spec", {})
        if spec.get("type") == "ExternalName":
            expect(spec.get("externalName") and not spec.get("selector"), where,
                   "an externalName and no selector", {k: spec.get(k) for k in ("externalName", "selector")})
            continue
        targets = [(dep, labels) for dep, labels in pod_labels_all if _matches(spec.get("selector"), labels)]
        expect(targets, where + " selector", f"labels matching a Deployment's pod template "
               f"{[labels for _, labels in pod_labels_all]}", spec.get("selector"))
        expect(spec.get("sessionAffinity", "None") == "None", where, "sessionAffinity None (Herald needs no sticky "
               "sessions)", spec.get("sessionAffinity"))
        for dep, _ in targets:
            containers = dep["spec"]["template"]["spec"].get("containers", [])
            for port in spec.get("ports", []):
                target = port.get("targetPort", port.get("port"))
                resolved = [_resolve_port(target, c) for c in containers]
                expect(any(r is not None for r in resolved), f"{where} port {port.get('port')}",
                       f"targetPort resolving to a container port of {_name(dep)} "
                       f"{[p for c in containers for p in c.get('ports', [])]}", target)

    for p in by_kind.get("PodDisruptionBudget", []):
        where = _name(p)
        spec = p.get("spec", {})
        selector = spec.get("selector", {}).get("matchLabels", {})
        expect(any(_matches(selector, labels) for _, labels in pod_labels_all), where + " selector",
               f"matchLabels matching a Deployment's pod template {[labels for _, labels in pod_labels_all]}",
               selector)
        expect(spec.get("maxUnavailable") == 1, where, "maxUnavailable 1", spec.get("maxUnavailable"))
    return errors


def kustomization_errors(directory=K8S_DIR):
    with open(directory / "kustomization.yaml") as f:
        k = yaml.safe_load(f)
    listed = list(k.get("resources", []))
    present = [p.name for p in manifest_files(directory)]
    errors = []
    if sorted(listed) != sorted(present):
        errors.append(f"kustomization.yaml resources: expected every manifest in {directory} {sorted(present)}, "
                      f"got {sorted(listed)}")
    return errors


# ----------------------------------------------------------------------------------------------------------------
# Running the ConfigMap's config for real
# ----------------------------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def redis_ping(port, timeout=1.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class PodEmulation:
    """The herald container of the Deployment, as far as it can run here: the ConfigMap mounted at its path (a
    temporary directory stands for it), the container's environment with fieldRef and optional Secrets resolved."""

    def __init__(self, docs, edit_config=None):
        self.dir = tempfile.mkdtemp(prefix="herald-k8s-")
        dep = next(d for _, d in docs if d.get("kind") == "Deployment")
        docker = dockerfile_facts()
        self.container = next(c for c in dep["spec"]["template"]["spec"]["containers"]
                              if c.get("command", [None])[0] == docker["entrypoint"][0])
        path, cm_name, key, mount_path, errors = config_file_of(dep, self.container, docs)
        if errors:
            raise AssertionError("\n".join(errors))
        cm = next(d for _, d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name)
        self.config_text = cm["data"][key]
        if edit_config is not None:
            self.config_text = json.dumps(edit_config(json.loads(self.config_text)))
        self.config = json.loads(self.config_text)
        self.config_path = os.path.join(self.dir, path[len(mount_path) + 1:])
        os.makedirs(os.path.dirname(self.config_path), exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(self.config_text)
        self.env = {}
        for e in self.container.get("env", []):
            name, source = e["name"], e.get("valueFrom", {})
            if "value" in e:
                self.env[name] = self.config_path if name == "HERALD_CONFIG" else e["value"]
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                self.env[name] = FAKE_POD_NAME
            elif source.get("secretKeyRef", {}).get("optional") is True:
                continue  # no Secret ships with the manifests: the variable is absent, as in a fresh namespace
            else:
                raise AssertionError(f"env {name}: expected a value, fieldRef metadata.name or an optional "
                                     f"secretKeyRef, got {e}")
        flags = _flag_values(list(self.container.get("command", [])[1:]) + list(self.container.get("args", [])))
        self.args = []
        for name, value in flags.items():
            if name == "config":
                value = self.config_path
            if name not in ("listen", "redis"):
                self.args += [f"--{name}", value] if value else [f"--{name}"]

    def uses_redis(self):
        return "redis" in self.config or "HERALD_REDIS" in self.env

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class K8sManifestTest(HeraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.defaults = herald_defaults(herald_binary())
        cls.docker = dockerfile_facts()

    def assert_no_errors(self, errors, what):
        self.assertEqual(errors, [], msg=f"{what}:\n  " + "\n  ".join(errors))

    def test_manifests_are_consistent(self):
        self.assert_no_errors(check_manifests(self.docs, self.defaults, self.docker), f"manifests in {K8S_DIR}")

    def test_kustomization_lists_every_manifest(self):
        self.assert_no_errors(kustomization_errors(), "kustomization.yaml")

    def test_checker_catches_mistakes(self):
        """Each broken copy must be reported, by an error naming what is wrong."""
        def doc(docs, kind, name=None):
            return next(d for _, d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))

        def container(docs):
            return doc(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]

        def configmap_json(docs, **changes):
            cm = doc(docs, "ConfigMap")
            key = next(iter(cm["data"]))
            cm["data"][key] = json.dumps({**json.loads(cm["data"][key]), **changes})

        service = lambda docs: doc(docs, "Service", "herald")  # noqa: E731
        mutations = {
            "Service selector": (lambda d: service(d)["spec"]["selector"].update(
                {"app.kubernetes.io/component": "nope"}), "Service herald selector"),
            "Deployment selector": (lambda d: doc(d, "Deployment")["spec"]["selector"]["matchLabels"].update(
                {"app.kubernetes.io/name": "other"}), "Deployment herald selector"),
            "PDB selector": (lambda d: doc(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(
                {"app.kubernetes.io/name": "other"}), "PodDisruptionBudget herald selector"),
            "HPA target": (lambda d: doc(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(
                {"name": "heraldx"}), "scaleTargetRef"),
            "readiness port": (lambda d: container(d)["readinessProbe"]["httpGet"].update({"port": 9090}),
                               "readinessProbe: expected a port"),
            "liveness path": (lambda d: container(d)["livenessProbe"]["httpGet"].update({"path": "/readyz"}),
                              "livenessProbe: expected httpGet path /healthz"),
            "Service targetPort": (lambda d: service(d)["spec"]["ports"][0].update({"targetPort": "metrics"}),
                                   "targetPort resolving"),
            "container port vs listen": (lambda d: container(d)["ports"][0].update({"containerPort": 9000}),
                                         "listen port 8080"),
            "grace period": (lambda d: doc(d, "Deployment")["spec"]["template"]["spec"].update(
                {"terminationGracePeriodSeconds": 20}), "terminationGracePeriodSeconds > drain timeout"),
            "drain in ConfigMap": (lambda d: configmap_json(d, drain_timeout=60),
                                   "ConfigMap key 'drain_timeout'"),
            "drain from env": (lambda d: container(d)["env"].append({"name": "HERALD_DRAIN_TIMEOUT", "value": "45"}),
                               "env HERALD_DRAIN_TIMEOUT"),
            "no preStop": (lambda d: container(d).pop("lifecycle"), "a preStop hook that sleeps"),
            "no limits": (lambda d: container(d)["resources"].pop("limits"), "resources.limits"),
            "HERALD_CONFIG path": (lambda d: next(e for e in container(d)["env"] if e["name"] == "HERALD_CONFIG")
                                   .update({"value": "/etc/elsewhere/herald.json"}), "HERALD_CONFIG="),
            "sticky Service": (lambda d: service(d)["spec"].update({"sessionAffinity": "ClientIP"}),
                               "sessionAffinity None"),
            "root user": (lambda d: doc(d, "Deployment")["spec"]["template"]["spec"]["securityContext"].update(
                {"runAsUser": 0}), "runAsUser"),
            "scrape port": (lambda d: doc(d, "Deployment")["spec"]["template"]["metadata"]["annotations"].update(
                {"prometheus.io/port": "9090"}), "prometheus.io/scrape"),
            "Redis host": (lambda d: configmap_json(d, redis="redis://no-such-service:6379"), "Redis host"),
        }
        for label, (mutate, expected) in mutations.items():
            with self.subTest(mutation=label):
                docs = copy.deepcopy(self.docs)
                mutate(docs)
                errors = check_manifests(docs, self.defaults, self.docker)
                self.assertTrue(any(expected in e for e in errors),
                                msg=f"broken copy ({label}): expected an error containing {expected!r}, got "
                                    f"{errors or 'no error'}")

    def start_redis(self):
        """A throwaway redis-server on a free loopback port (no persistence), stopped at cleanup."""
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server not found: expected it installed (scripts/install-deps.sh does)")
        for _ in range(3):
            port = free_port()
            proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                                     "--appendonly", "no", "--daemonize", "no", "--dir", tempfile.gettempdir()],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None and not redis_ping(port):
                time.sleep(0.05)
            if proc.poll() is None and redis_ping(port):
                self.addCleanup(self._stop_redis, proc)
                return port
            self._stop_redis(proc)  # most likely the port was taken meanwhile: try another one
        raise AssertionError(f"redis-server: expected PONG on a free port within 10 s, 3 tries; last output:\n"
                             f"{proc.stdout.read().decode(errors='replace')[-1500:] if proc.stdout else ''}")

    @staticmethod
    def _stop_redis(proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()

    def wait_status(self, server, path, status, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                r = http_request(server.port, "GET", path, timeout=2)
                if r.status == status:
                    return r
                last = f"{r.status} {r.body!r}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        raise AssertionError(f"GET {path}: expected {status} within {timeout} s, last got {last}\n"
                             f"herald stderr:\n{server.stderr_tail()}")

    def test_configmap_config_runs_herald(self):
        """The pod's config file and environment start the real binary; only the listen address (a free loopback
        port) and the Redis address (a local redis-server) are overridden. Then SIGTERM drains as the grace period
        assumes: readiness fails, liveness holds, clients get close 1001, exit 0."""
        pod = PodEmulation(self.docs)
        self.addCleanup(pod.cleanup)
        args = list(pod.args)
        if pod.uses_redis():
            args += ["--redis", f"redis://{HOST}:{self.start_redis()}"]
        # HeraldServer adds --listen 127.0.0.1:0 (the only other override) and keeps no HERALD_* of this process.
        server = self.start_server(*args, node_name=None, drain_timeout=None, env=pod.env)
        self.assertIn(f"HERALD_CONFIG={pod.config_path}", [f"{k}={v}" for k, v in pod.env.items()],
                      msg="the config reaches herald as in the pod: through HERALD_CONFIG")
        self.wait_status(server, "/healthz", 200)
        self.wait_status(server, "/readyz", 200)  # with Redis configured: the backplane is connected
        client = open_ws_raw(server)
        self.addCleanup(client.close)
        connected = client.connect_op()
        self.assertEqual(connected.get("node"), FAKE_POD_NAME,
                         msg=f"connected.node: expected the pod name from HERALD_NODE_NAME, got {connected!r}")
        if "heartbeat" in pod.config:
            self.assertEqual(connected.get("heartbeat"), pod.config["heartbeat"],
                             msg=f"connected.heartbeat: expected the ConfigMap's value, got {connected!r}")

        server.terminate()
        client.expect_close(1001, timeout=5.0, reply=False, what="close 1001 on SIGTERM (drain)")
        self.wait_status(server, "/readyz", 503, timeout=5.0)
        self.wait_status(server, "/healthz", 200, timeout=5.0)
        client.send_close(1001)
        drain = float(pod.config.get("drain_timeout", self.defaults["drain_timeout"]))
        code = server.wait_exit(drain + 5)
        self.assertEqual(code, 0, msg=f"herald after SIGTERM and the last client's close: expected exit 0 within "
                                      f"{drain + 5:g} s, got {code}\nstderr:\n{server.stderr_tail()}")

    def test_herald_refuses_a_broken_configmap(self):
        """The check above can fail: the same pod with a misspelt key in its JSON must not start."""
        pod = PodEmulation(self.docs, edit_config=lambda config: {**config, "drain_timout": 5})
        self.addCleanup(pod.cleanup)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env.update(pod.env)
        r = subprocess.run([herald_binary(), "--listen", f"{HOST}:0", *pod.args], capture_output=True, timeout=10,
                           env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.assertNotEqual(r.returncode, 0, msg=f"herald with a misspelt ConfigMap key: expected a refusal, got "
                                                 f"exit {r.returncode}, stderr {r.stderr[-500:]!r}")
        self.assertIn(b"drain_timout", r.stderr, msg=f"expected the error to name the key, got {r.stderr!r}")


if __name__ == "__main__":
    unittest.main()
