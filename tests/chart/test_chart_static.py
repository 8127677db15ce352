"""The chart as rendered by the real helm: lint, CRDs in step with crds/, values that
drive the operator's real settings, the default schedules, and the values schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, REPO, operator_deployment, render

from sync_operator.app.settings import OperatorSettings
from testkit.helm import lint, run_helm, template

pytestmark = pytest.mark.cluster  # needs the Go-built helm, like the cluster tests


def test_chart_lints_clean(helm_binary: Path) -> None:
    for values in (None, {"watchNamespace": "sync-jobs", "webhook": {"enabled": False},
                          "metrics": {"serviceMonitor": {"enabled": True}},
                          "database": {"existingSecret": "sync-db"}},
                   {"webhook": {"tls": {"certManager": {"enabled": True}}}},
                   {"webhook": {"tls": {"existingSecret": "tls"}}, "metrics": {"enabled": False},
                    "leaderElection": {"enabled": False}, "replicaCount": 1}):
        result = lint(CHART, values)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "0 chart(s) failed" in output
        assert "[WARNING]" not in output, output
        assert "[ERROR]" not in output, output


def test_chart_crds_match_repository_crds() -> None:
    """The chart ships the generated CRDs byte for byte, so the two cannot drift."""
    ours = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    theirs = {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}
    assert sorted(ours) == sorted(theirs)
    for name, content in theirs.items():
        assert ours[name] == content, (
            f"charts/sync-operator/crds/{name} differs from crds/{name}: after regenerating "
            "the CRDs, run `cp crds/*.yaml charts/sync-operator/crds/`")


def test_default_schedules_are_the_deploy_schedules(helm_binary: Path) -> None:
    release = render("sync-system")
    rendered = {m["metadata"]["name"]: m for m in release.of_kind("SyncSchedule")}
    shipped = {p.stem: yaml.safe_load(p.read_text())
               for p in sorted((REPO / "deploy" / "schedules").glob("*.yaml"))}
    assert sorted(rendered) == sorted(shipped)
    for name, doc in shipped.items():
        assert rendered[name]["spec"] == doc["spec"], name
        assert rendered[name]["metadata"]["namespace"] == "sync-system"


def test_a_default_schedule_can_be_disabled_or_changed(helm_binary: Path) -> None:
    release = render("sync-system", {"watchNamespace": "jobs", "schedules": {
        "audio-weekly": {"enabled": False},
        "quran-daily": {"suspend": True, "jobTemplate": {"params": {"surah": 1}}}}})
    names = {m["metadata"]["name"]: m for m in release.of_kind("SyncSchedule")}
    assert "audio-weekly" not in names
    assert len(names) == 4
    quran = names["quran-daily"]
    assert quran["metadata"]["namespace"] == "jobs"  # where the operator watches
    assert quran["spec"]["suspend"] is True
    assert quran["spec"]["jobTemplate"] == {"params": {"surah": 1}}
    assert quran["spec"]["schedule"] == "0 3 * * *"


def test_every_operator_env_var_is_a_setting_and_parses(
        helm_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Deployment's environment is read by the operator's own settings class."""
    release = render("sync-system", {"limits": {"globalLimit": 6, "typeLimits": {"prayer": 3}}})
    env = release.operator_env()
    fields = {f"SYNC_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    for name in fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.namespace is None  # cluster-wide by default
    assert settings.lease_namespace == "sync-system"  # the release namespace
    assert settings.leader_election is True
    assert settings.global_limit == 6
    assert {str(k): v for k, v in settings.type_limits.items()} == {
        "quran": 1, "prayer": 3, "hadith": 1, "audio": 1, "finance": 1}
    assert settings.runner_image == "sync-runner:0.1.0"
    assert settings.metrics_port == 8080


def test_runner_env_values_reach_the_runner_settings(
        helm_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runner.env (plain values) and runner.envFromSecret become the operator's runner
    settings, which put them into every runner pod."""
    release = render("sync-system", {"runner": {
        "env": {"SYNC_SOURCE_URL": "http://upstream:8080", "LOG_LEVEL": "debug"},
        "envFromSecret": "sync-source-credentials"}})
    env = release.operator_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.runner_env == {"SYNC_SOURCE_URL": "http://upstream:8080",
                                   "LOG_LEVEL": "debug"}
    assert settings.runner_env_from_secret == "sync-source-credentials"
    assert "SYNC_OPERATOR_RUNNER_ENV" not in render("sync-system").operator_env()


def test_secrets_are_referenced_not_inlined(helm_binary: Path) -> None:
    release = render("sync-system", {
        "database": {"existingSecret": "sync-db", "key": "url"},
        "redis": {"existingSecret": "sync-redis"},
        "runner": {"database": {"existingSecret": "app-db"}}})
    container = release.operator_deployment["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {
        "SYNC_OPERATOR_DATABASE_URL": {"name": "sync-db", "key": "url"},
        "SYNC_OPERATOR_REDIS_URL": {"name": "sync-redis", "key": "redis-url"},
        "SYNC_OPERATOR_RUNNER_DATABASE_URL": {"name": "app-db", "key": "runner-database-url"},
    }


def test_deployment_is_locked_down_and_highly_available(helm_binary: Path) -> None:
    release = render("sync-system")
    deployment = release.operator_deployment
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["command"] == ["python", "-m", "sync_operator"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert (sc["runAsNonRoot"], sc["runAsUser"]) == (True, 10001)
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # Ready once the webhook server answers (the Service routes by it); a standby serves
    # the webhooks too, so it is ready as well.
    assert container["readinessProbe"]["tcpSocket"] == {"port": "webhook"}
    assert container["ports"] == [
        {"name": "health", "containerPort": 8081, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
        {"name": "webhook", "containerPort": 9443, "protocol": "TCP"}]
    assert pod["serviceAccountName"] == release.service_account
    pdb = release.of_kind("PodDisruptionBudget")[0]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    service = release.get("Service", f"{release.fullname}-metrics")
    assert service["spec"]["ports"][0]["port"] == 8080
    assert release.of_kind("ServiceMonitor") == []
    monitored = render("sync-system", {"metrics": {"serviceMonitor": {"enabled": True}}})
    assert len(monitored.of_kind("ServiceMonitor")) == 1


def tls_secrets(release: Any) -> list[dict[str, Any]]:
    """The webhook certificate Secrets the chart renders (not the console's key)."""
    return [s for s in release.of_kind("Secret") if s["metadata"]["name"].endswith(
        "-webhook-tls")]


def test_webhook_is_served_with_a_mounted_certificate(helm_binary: Path) -> None:
    release = render("sync-system")
    env = release.operator_env()
    host = f"{release.fullname}-webhook.sync-system.svc"
    assert env["SYNC_OPERATOR_WEBHOOK_ENABLED"] == "true"
    assert env["SYNC_OPERATOR_WEBHOOK_HOST"] == host
    assert env["SYNC_OPERATOR_WEBHOOK_PORT"] == "9443"
    assert env["SYNC_OPERATOR_WEBHOOK_CONFIGURATION_NAME"] == "sync.jobcontrol.io"
    service = release.get("Service", f"{release.fullname}-webhook")
    assert service["spec"]["ports"][0]["port"] == 9443  # kopf's URL carries the port
    secret = release.get("Secret", f"{release.fullname}-webhook-tls")
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    pod = release.operator_deployment["spec"]["template"]["spec"]
    directory = Path(env["SYNC_OPERATOR_WEBHOOK_CERT_FILE"]).parent
    assert {"name": "webhook-tls", "mountPath": str(directory), "readOnly": True} in \
        pod["containers"][0]["volumeMounts"]
    assert {"name": "webhook-tls", "secret": {"secretName": secret["metadata"]["name"]}} in \
        pod["volumes"]
    rules = _rules(release.get("ClusterRole", f"{release.fullname}-cluster"))
    admission = "admissionregistration.k8s.io"
    assert {r for r in rules if r[0] == admission} == {
        (admission, kind, verb, name)
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
        for verb, name in (("create", ""), ("patch", "sync.jobcontrol.io"),
                           ("delete", "sync.jobcontrol.io"))}  # delete: uninstall hook

    managed = render("sync-system", {"webhook": {"tls": {"certManager": {"enabled": True}}}})
    assert tls_secrets(managed) == []
    certificate = managed.of_kind("Certificate")[0]
    assert host in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["secretName"] == secret["metadata"]["name"]
    own = render("sync-system", {"webhook": {"tls": {"existingSecret": "my-tls"}}})
    assert tls_secrets(own) == []
    assert own.of_kind("Certificate") == []
    off = render("sync-system", {"webhook": {"enabled": False}})
    assert off.operator_env()["SYNC_OPERATOR_WEBHOOK_ENABLED"] == "false"
    assert not [r for r in _rules(off.get("ClusterRole", f"{off.fullname}-cluster"))
                if r[0] == admission]
    assert not [s for s in off.of_kind("Service") if s["metadata"]["name"].endswith("webhook")]


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(apiGroup, resource, verb, resourceName or '') for every combination in a role."""
    return {(group, resource, verb, name)
            for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"] for name in rule.get("resourceNames") or [""]}


def test_namespaced_mode_uses_roles_and_asks_for_namespaces(helm_binary: Path) -> None:
    cluster_wide = render("sync-system")
    namespaced = render("sync-system", {"watchNamespace": "jobs", "webhook": {"enabled": False}})
    assert cluster_wide.of_kind("Role")[0]["metadata"]["name"].endswith("-leader-election")
    role = namespaced.get("Role", namespaced.fullname)
    assert role["metadata"]["namespace"] == "jobs"
    assert _rules(role) == _rules(cluster_wide.get("ClusterRole", cluster_wide.fullname))
    binding = namespaced.get("RoleBinding", namespaced.fullname)
    assert binding["metadata"]["namespace"] == "jobs"
    assert binding["subjects"][0]["namespace"] == "sync-system"
    env = namespaced.operator_env()
    assert env["SYNC_OPERATOR_NAMESPACE"] == "jobs"
    assert env["SYNC_OPERATOR_LEASE_NAMESPACE"] == "sync-system"
    # kopf lists/watches namespaces only when it serves specific ones.
    assert ("", "namespaces", "list", "") not in _rules(
        cluster_wide.get("ClusterRole", f"{cluster_wide.fullname}-cluster"))
    cluster_rules = _rules(namespaced.get("ClusterRole", f"{namespaced.fullname}-cluster"))
    assert cluster_rules == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list", ""),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch", ""),
        ("", "namespaces", "list", ""),
        ("", "namespaces", "watch", ""),
    }


def test_values_schema_rejects_bad_values(helm_binary: Path) -> None:
    for bad in ({"replicaCount": -1}, {"limits": {"globalLimit": 0}},
                {"limits": {"typeLimits": {"video": 1}}}, {"redis": {"url": "http://x"}},
                {"schedules": {"quran-daily": {"priority": 11}}},
                {"schedules": {"quran-daily": {"concurrencyPolicy": "Sometimes"}}},
                {"unknownKey": True}):
        result = run_helm("template", "x", str(CHART), "--set-json",
                          f"{_path(bad)}={json.dumps(_leaf(bad))}", check=False)
        assert result.returncode != 0, f"accepted {bad}"
        assert "schema" in result.stderr.lower(), result.stderr


def test_leader_election_off_needs_a_single_replica(helm_binary: Path) -> None:
    result = run_helm("template", "x", str(CHART), "--set", "leaderElection.enabled=false",
                      check=False)
    assert result.returncode != 0
    assert "replicaCount" in result.stderr
    single = render("sync-system", {"leaderElection": {"enabled": False}, "replicaCount": 1})
    assert not [r for r in single.of_kind("Role") if r["metadata"]["name"].endswith("election")]


def _path(nested: dict[str, Any]) -> str:
    """{"a": {"b": 1}} -> "a.b" (the --set-json key of the single leaf)."""
    key, value = next(iter(nested.items()))
    return key + ("." + _path(value) if isinstance(value, dict) and value else "")


def _leaf(nested: Any) -> Any:
    while isinstance(nested, dict) and nested:
        nested = next(iter(nested.values()))
    return nested


def _policies(release: Any) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in release.of_kind("NetworkPolicy")}


def test_network_policies_open_only_the_webhook_and_metrics_ports(helm_binary: Path) -> None:
    release = render("sync-system")
    policies = _policies(release)
    operator = policies[release.fullname]
    spec = operator["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    webhook, metrics = spec["ingress"]
    # The webhook: from anywhere (the API server's address is unknown), its port only.
    assert webhook == {"ports": [{"protocol": "TCP", "port": 9443}]}
    assert metrics["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert metrics["from"] == [{"namespaceSelector": {}, "podSelector": {}}]
    assert spec["egress"] == [{}]
    # The health port (8081) is not opened: kubelet probes pass regardless.
    opened = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
    assert opened == {9443, 8080}

    runner = policies[f"{release.fullname}-runner"]
    assert runner["metadata"]["namespace"] == "sync-system"
    assert runner["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "sync-operator", "app.kubernetes.io/name": "sync-runner"}
    assert runner["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert runner["spec"]["ingress"] == []
    assert runner["spec"]["egress"] == [{}]


def test_network_policy_values_restrict_scrapers_and_runner_egress(helm_binary: Path) -> None:
    postgres = {"to": [{"ipBlock": {"cidr": "10.0.5.0/24"}}],
                "ports": [{"protocol": "TCP", "port": 5432}]}
    release = render("sync-system", {
        "watchNamespace": "jobs", "webhook": {"port": 8443},
        "networkPolicy": {
            "metrics": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "monitoring"}}},
            "runner": {"egress": [postgres]}}})
    policies = _policies(release)
    ingress = policies[release.fullname]["spec"]["ingress"]
    assert ingress[0]["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert ingress[1]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}, "podSelector": {}}]
    runner = policies[f"{release.fullname}-runner"]
    assert runner["metadata"]["namespace"] == "jobs"  # where the runner pods are
    dns, allowed = runner["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert allowed == postgres

    several = render("sync-system", {"networkPolicy": {"runner": {"namespaces": ["a", "b"]}}})
    assert sorted(p["metadata"]["namespace"] for p in several.of_kind("NetworkPolicy")
                  if p["metadata"]["name"].endswith("-runner")) == ["a", "b"]


def test_network_policies_can_be_turned_off_and_follow_disabled_ports(
        helm_binary: Path) -> None:
    assert render("sync-system", {"networkPolicy": {"enabled": False}}).of_kind(
        "NetworkPolicy") == []
    release = render("sync-system", {"webhook": {"enabled": False},
                                      "metrics": {"enabled": False}})
    assert not _policies(release)[release.fullname]["spec"].get("ingress")  # deny all


MUTATING_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
VALIDATING_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
POLICY_KINDS = {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
                "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def _with_apis(*apis: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    args = [arg for api in apis for arg in ("--api-versions", api)]
    return template(CHART, "sync-system", "sync-system", values, extra_args=args)


def test_stamp_policies_render_only_where_the_cluster_serves_them(helm_binary: Path) -> None:
    """The API server stamps who did what when it has MutatingAdmissionPolicy; the guard
    comes with ValidatingAdmissionPolicy; without either the webhook stamps alone."""
    assert not {m["kind"] for m in render("sync-system").manifests} & POLICY_KINDS
    both = [m for m in _with_apis(MUTATING_API, VALIDATING_API) if m["kind"] in POLICY_KINDS]
    shipped = {(m["kind"], m["metadata"]["name"].replace(
        "sync-operator", "sync-system-sync-operator", 1)): m for m in (
            yaml.safe_load(p.read_text()) for p in sorted((REPO / "policies").glob("*.yaml")))}
    assert sorted((m["kind"], m["metadata"]["name"]) for m in both) == sorted(shipped)
    assert {m["kind"] for m in both} == POLICY_KINDS
    for manifest in both:
        source = shipped[(manifest["kind"], manifest["metadata"]["name"])]
        assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == "sync-system"
        spec = dict(manifest["spec"])
        if "policyName" in spec:
            assert spec.pop("policyName") == source["spec"]["policyName"].replace(
                "sync-operator", "sync-system-sync-operator", 1)
            source = {**source, "spec": {k: v for k, v in source["spec"].items()
                                         if k != "policyName"}}
        assert spec == source["spec"], manifest["kind"]  # the CEL as written, unchanged
    only_vap = {m["kind"] for m in _with_apis(VALIDATING_API)} & POLICY_KINDS
    assert only_vap == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    scoped = _with_apis(MUTATING_API, VALIDATING_API, values={"watchNamespace": "jobs"})
    for binding in (m for m in scoped if m["kind"] in POLICY_KINDS
                    and m["kind"].endswith("Binding")):
        assert binding["spec"]["matchResources"] == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "jobs"}}}
    # The webhook's Service and certificate stay in all cases: schedule validation
    # (and, without the policies, the stamps) needs them.
    assert [m for m in scoped if m["kind"] == "Service"
            and m["metadata"]["name"].endswith("-webhook")]


def _operator_env(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    deployment = operator_deployment(manifests)
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_the_operator_stamps_in_a_webhook_only_where_the_api_server_cannot(
        helm_binary: Path) -> None:
    """One stamp writer: with MutatingAdmissionPolicy served the API server stamps and
    the operator registers no stamp webhook; without it the webhook is the stamp."""
    def stamp_setting(*apis: str) -> bool:
        env = {e["name"]: e.get("value") for e in _operator_env(_with_apis(*apis))}
        value = env["SYNC_OPERATOR_STAMP_WEBHOOKS"]
        assert value in ("true", "false")
        return bool(value == "true")

    assert stamp_setting() is True
    assert stamp_setting(VALIDATING_API) is True  # the guard alone does not stamp
    assert stamp_setting(MUTATING_API, VALIDATING_API) is False


def test_listen_on_pod_ip_binds_every_server_to_status_pod_ip(helm_binary: Path) -> None:
    """Default 0.0.0.0 (port-forward reaches it); listenOnPodIP binds the webhook, metrics
    and health servers to the pod's own IP, so replicas sharing a network do not collide."""
    default = {e["name"]: e for e in _operator_env(render("sync-system").manifests)}
    assert default["SYNC_OPERATOR_WEBHOOK_ADDR"]["value"] == "0.0.0.0"
    assert "SYNC_OPERATOR_LISTEN_ADDR" not in default
    assert OperatorSettings.model_fields["listen_addr"].default == "0.0.0.0"
    on_ip = {e["name"]: e for e in _operator_env(
        render("sync-system", {"listenOnPodIP": True}).manifests)}
    for name in ("SYNC_OPERATOR_WEBHOOK_ADDR", "SYNC_OPERATOR_LISTEN_ADDR"):
        assert on_ip[name]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}, name


def test_the_console_replicas_share_a_fernet_session_key(
        helm_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handover key is a valid Fernet key, read by the console's settings."""
    import base64

    from cryptography.fernet import Fernet

    from sync_operator.console.settings import ConsoleSettings

    release = render("sync-system", {"console": {"replicaCount": 3}})
    secret = release.get("Secret", "sync-system-sync-operator-console-session")
    key = base64.b64decode(secret["data"]["key"]).decode()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"t")) == b"t"
    console = release.get("Deployment", "sync-system-sync-operator-console")
    env = {e["name"]: e for e in console["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SYNC_CONSOLE_SESSION_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "sync-system-sync-operator-console-session", "key": "key"}
    monkeypatch.setenv("SYNC_CONSOLE_SESSION_KEY", key)
    for name, e in env.items():
        if "value" in e:
            monkeypatch.setenv(name, str(e["value"]))
    assert ConsoleSettings().session_key == key


def test_the_consoles_own_rights_are_what_the_tests_run_it_under(helm_binary: Path) -> None:
    """The console's ServiceAccount may review tokens and access and list/watch SyncJobs,
    nothing else (what users do, it does with their tokens); the tests and the benchmark
    bind exactly that (testkit.console.CONSOLE_RULES)."""
    from testkit.console import CONSOLE_RULES

    for values in ({}, {"watchNamespace": "jobs"}):
        release = render("sync-system", values)
        account = "sync-system-sync-operator-console"
        bound = [b for kind in ("ClusterRoleBinding", "RoleBinding")
                 for b in release.of_kind(kind)
                 if any(s.get("name") == account for s in b["subjects"])]
        roles = [release.get(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bound]
        rules = sorted((r["apiGroups"], r["resources"], r["verbs"])
                       for role in roles for r in role["rules"])
        assert rules == sorted((r["apiGroups"], r["resources"], r["verbs"])
                               for r in CONSOLE_RULES), values
