"""deploy/k8s against the Kubernetes API's own schema, without a cluster: kubernetes-validate (PyPI) carries the
OpenAPI schemas of each Kubernetes release, so a misspelt field, a number written as a string or an object in the
wrong place fails here as `kubectl apply` would fail on a cluster. Then what a schema cannot say: requests within
limits, the autoscaler, the disruption budget and the Deployment agreeing with each other, and probes that neither
restart a pod for a database outage nor give up before a slow start. (tests/integration/test_deploy.py checks the
probes' routes against the app, the settings' values, and the memory limits against the workers.)"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from leafdoc.core.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest release checked: autoscaling/v2 and policy/v1 are older; 1.29 is the oldest that the big clouds'
# extended support still ran in 2026. The newest is the newest whose schema the validator carries.
OLDEST = Version("1.29.0")


def resources() -> list[tuple[str, dict]]:
    """(file name, resource) for every object the manifests define, the optional store-pvc.yaml included."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out.extend((path.name, d) for d in yaml.safe_load_all(path.read_text()) if d)
    return out


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in resources() if d["kind"] == kind}


def versions() -> list[str]:
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    found = {Version(m.group(1)) for p in schemas.iterdir() if (m := re.fullmatch(r"v([\d.]+)-local", p.name))}
    return [str(v) for v in sorted(found) if v >= OLDEST]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (cpu "500m", memory "768Mi") as a number of cores or bytes."""
    m = re.fullmatch(r"([\d.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    assert m, f"not a quantity: {value!r}"
    factor = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    factor |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(m.group(1)) * factor[m.group(2)]


def pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


# ---- the schema ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", versions())
def test_every_manifest_is_valid_for_the_kubernetes_release(version):
    found = resources()
    assert {d["kind"] for _, d in found} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "Ingress"}
    for name, doc in found:
        try:
            # strict: a field the schema does not have is an error (kubectl would drop it, or refuse it)
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']} on Kubernetes {version}: {e.message}")


def test_the_schema_check_finds_the_mistakes_it_is_here_for():
    """The validator refuses a copy of api.yaml with a misspelt field, a number given as text and a probe
    without its handler's port; so the test above passing means something."""
    [api] = [d for name, d in resources() if name == "api.yaml" and d["kind"] == "Deployment"]
    version = versions()[-1]
    misspelt, as_text, no_port = (copy.deepcopy(api) for _ in range(3))
    misspelt["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {"cpu": "2"}
    as_text["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSeconds"] = "15"
    del no_port["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"]
    for broken in (misspelt, as_text, no_port):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)
    kubernetes_validate.validate(api, version, strict=True)


def test_kustomization_lists_the_manifests_and_names_both_images():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # the optional volume is commented in, documented; the Secret is created once, never re-applied with placeholders
    assert set(k["resources"]) == on_disk - {"store-pvc.yaml", "secret.yaml"}
    used = {c["image"] for d in of_kind("Deployment").values() for c in pod_spec(d)["containers"]}
    assert used == {i["name"] for i in k["images"]} == {"leafdoc-serve", "leafdoc-worker"}


# ---- what the schema cannot say -----------------------------------------------------------------------------


def test_every_container_requests_no_more_than_its_limits():
    for name, d in of_kind("Deployment").items():
        for c in pod_spec(d)["containers"]:
            requests, limits = c["resources"]["requests"], c["resources"]["limits"]
            assert set(requests) >= {"cpu", "memory"} and set(limits) >= {"cpu", "memory"}, name
            for key in ("cpu", "memory"):
                assert quantity(requests[key]) <= quantity(limits[key]), f"{name}: {key} request above its limit"
            # A serving container runs a worker per whole CPU of its limit (leafdoc serve): a fraction is wasted.
            if c["image"] == "leafdoc-serve":
                assert quantity(limits["cpu"]) == int(quantity(limits["cpu"])), f"{name}: CPU limit {limits['cpu']}"


def test_the_autoscaler_the_disruption_budget_and_the_deployment_agree():
    [hpa], [pdb] = of_kind("HorizontalPodAutoscaler").values(), of_kind("PodDisruptionBudget").values()
    api = of_kind("Deployment")[hpa["spec"]["scaleTargetRef"]["name"]]
    spec = hpa["spec"]
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    # The HPA owns the replica count: a `replicas` in the Deployment would reset it at every `kubectl apply`.
    assert "replicas" not in api["spec"], "leave replicas to the HorizontalPodAutoscaler"
    # Utilisation is a share of the requests: every container of the pod must request CPU.
    [metric] = spec["metrics"]
    assert metric["resource"]["name"] == "cpu" and 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    assert all("cpu" in c["resources"]["requests"] for c in pod_spec(api)["containers"])
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60  # no flapping on a bursty load
    # The budget covers the API's pods, and a node can still be drained at the HPA's minimum.
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["spec"]["minAvailable"] < spec["minReplicas"]
    # A rolling update never takes a serving pod away before its successor is ready.
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_restart_only_a_stuck_process_and_wait_for_a_slow_start():
    shed_after = Settings.model_fields["shed_after_seconds"].default
    for name in ("leafdoc-api", "leafdoc-ui"):
        d = of_kind("Deployment")[name]
        [c] = pod_spec(d)["containers"]
        live, ready, start = c["livenessProbe"], c["readinessProbe"], c["startupProbe"]
        # Liveness asks only whether the process answers: /readyz fails while PostgreSQL is away, and restarting
        # every pod for that would turn an outage of one service into an outage of all. (A Redis outage leaves
        # /readyz 200, "degraded": tests/integration/test_backend_errors.py.)
        assert live["httpGet"]["path"] == "/healthz" and ready["httpGet"]["path"] == "/readyz", name
        # An overloaded worker sheds predictions after shed_after_seconds of event-loop lag and then answers the
        # probe within about three times that (docs/deploy.md, "Overload"): the probe must wait longer.
        assert live.get("timeoutSeconds", 1) >= 3 * shed_after, name
        # A cold node migrates the schema, seeds the registry and loads the model before /healthz answers.
        assert start["periodSeconds"] * start["failureThreshold"] >= 120, name
        # The pod leaves the endpoints (preStop sleep) and uvicorn finishes its requests within the grace period.
        grace = pod_spec(d).get("terminationGracePeriodSeconds", 30)
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = float(m.group(1)) if (m := re.search(r"sleep\((\d+(?:\.\d+)?)\)", " ".join(pre_stop))) else 0
        assert grace >= sleep + 15, name


def test_metrics_reaches_private_networks_only():
    """/metrics counts requests and diagnoses by label (a business's volumes and its growers' diseases, what
    GET /v1/monitoring shows only with the admin token): the Ingress that routes it (an Exact path, which
    ingress-nginx prefers to the API's `/` prefix) lets private addresses through only, as deploy/nginx does."""
    import ipaddress

    routing = {
        name: ing
        for name, ing in of_kind("Ingress").items()
        if any(p["path"] == "/metrics" for rule in ing["spec"]["rules"] for p in rule["http"]["paths"])
    }
    assert routing, "no Ingress says who may reach /metrics: the API's `/` would publish it"
    for ing in routing.values():
        assert all(p["pathType"] == "Exact" for rule in ing["spec"]["rules"] for p in rule["http"]["paths"])
        ranges = ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"].split(",")
        assert ranges and all(ipaddress.ip_network(r.strip()).is_private for r in ranges)
