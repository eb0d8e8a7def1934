"""The Helm chart renders for its defaults and each toggle, into valid Kubernetes objects.

Rendering is done by the real ``helm`` binary; see ``helm_chart.py`` for what is checked and what
is not (the summary is printed at the end of the run).
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.compose_checks import config_from_env
from tests.deploy.helm_chart import (
    INSTALL_HINT,
    NAMESPACE,
    RELEASE,
    ROOT,
    SERVICES,
    HelmError,
    Rendered,
    component,
    env_of,
    helm_binary,
    lint,
    render,
    schema_errors,
)

EXTERNAL = {
    "nats": {"enabled": False},
    "externalNats": {"url": "nats://nats.messaging:4222"},
    "redis": {"enabled": False},
    "externalRedis": {"existingSecret": "infra", "existingSecretKey": "REDIS_URL"},
    "postgresql": {"enabled": False},
    "externalDatabase": {"url": "postgresql://cc:pw@db.example:5432/callcenter"},
}
HPA_ON = {"defaults": {"autoscaling": {"enabled": True}}}
INGRESS_ON = {"ingress": {"enabled": True, "host": "cc.example.com"}}


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    if not helm_binary():
        pytest.fail(
            f"the chart tests need helm on PATH (or HELM_BIN); install it with: {INSTALL_HINT}"
        )


def rendered_ok(values: dict[str, Any] | None = None) -> Rendered:
    """Render, lint --strict, and require every object to be a valid Kubernetes object."""
    lint(values)
    out = render(values)
    problems = schema_errors(out)
    assert not problems, "invalid Kubernetes objects:\n" + "\n".join(problems)
    return out


def deployments(out: Rendered) -> dict[str, dict[str, Any]]:
    return {svc: out.get("Deployment", component(svc)) for svc in SERVICES}


# --- defaults -------------------------------------------------------------------------------


def test_defaults_render_valid_objects_for_every_service() -> None:
    out = rendered_ok()
    kinds = sorted({o["kind"] for o in out.objects})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for svc, dep in deployments(out).items():
        assert dep["metadata"]["namespace"] == NAMESPACE
        assert dep["spec"]["replicas"] == 2
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == ["python", "-m", f"callcenter.{svc}"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        port = container["ports"][0]["containerPort"]
        # the service listens where the probes and the Service look
        listen = env_of(dep)
        port_key = "PORT" if svc in ("gateway", "voice_pipeline") else "HEALTH_PORT"
        assert listen[f"CALLCENTER_{svc.upper()}__{port_key}"]["value"] == str(port)
        assert (
            listen[f"CALLCENTER_{svc.upper()}__{port_key.replace('PORT', 'HOST')}"]["value"]
            == "0.0.0.0"
        )
        service = out.get("Service", component(svc))
        assert service["spec"]["ports"][0]["port"] == port
        assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        pdb = out.get("PodDisruptionBudget", component(svc))
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
    assert out.of_kind("HorizontalPodAutoscaler") == []
    assert out.of_kind("Ingress") == []


def test_ports_match_the_services_config() -> None:
    """The chart's default ports are the ones config.yaml gives each service."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    expected = {
        "gateway": config["gateway"]["port"],
        "voice_pipeline": config["voice_pipeline"]["port"],
        "conversation": config["conversation"]["health_port"],
        "tools": config["tools"]["health_port"],
        "post_call": config["post_call"]["health_port"],
    }
    out = render()
    for svc, dep in deployments(out).items():
        assert (
            dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
            == expected[svc]
        )


def test_configmap_carries_config_yaml_and_values_override_it() -> None:
    out = render(
        {
            "config": {
                "logging": {"level": "DEBUG"},
                "llm": {"models": [{"model": "openai/gpt-4o-mini"}]},
            }
        }
    )
    cm = out.get("ConfigMap", f"{RELEASE}-callcenter-config")
    rendered = yaml.safe_load(cm["data"]["config.yaml"])
    expected = yaml.safe_load((ROOT / "config.yaml").read_text())
    expected["logging"]["level"] = "DEBUG"
    expected["llm"]["models"] = [{"model": "openai/gpt-4o-mini"}]
    assert rendered == expected
    for dep in deployments(out).values():
        pod = dep["spec"]["template"]["spec"]
        assert env_of(dep)["CALLCENTER_CONFIG"]["value"] == "/etc/callcenter/config.yaml"
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["config"] == "/etc/callcenter"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
        # a config change rolls the pods
        assert (
            pod is not None
            and dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        )


def test_config_change_changes_the_rollout_checksum() -> None:
    before = render().get("Deployment", component("tools"))
    after = render({"config": {"logging": {"level": "DEBUG"}}}).get(
        "Deployment", component("tools")
    )
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_bundled_dependencies_are_wired_in() -> None:
    out = render()
    env = env_of(out.get("Deployment", component("conversation")))
    assert env["NATS_URL"]["value"] == f"nats://{RELEASE}-nats:4222"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-redis",
        "key": "redis-password",
    }
    assert env["REDIS_URL"]["value"] == f"redis://:$(REDIS_PASSWORD)@{RELEASE}-redis-master:6379/0"
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"{RELEASE}-postgresql"
    assert env["DATABASE_URL"]["value"].startswith("postgresql://callcenter:$(DATABASE_PASSWORD)@")
    names = list(env)
    # $(VAR) references only work for variables defined earlier in the list
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    assert names.index("DATABASE_PASSWORD") < names.index("DATABASE_URL")


def test_graceful_shutdown_comes_from_values() -> None:
    out = rendered_ok(
        {"voice_pipeline": {"terminationGracePeriodSeconds": 7200, "preStopSleepSeconds": 20}}
    )
    for svc, dep in deployments(out).items():
        pod = dep["spec"]["template"]["spec"]
        sleep = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        if svc == "voice_pipeline":
            assert pod["terminationGracePeriodSeconds"] == 7200
            assert sleep == ["sleep", "20"]
        else:
            assert pod["terminationGracePeriodSeconds"] < 7200
        assert pod["terminationGracePeriodSeconds"] > int(sleep[1])


def test_migrations_job_runs_migrate_and_seed_as_a_hook() -> None:
    job = render().get("Job", f"{RELEASE}-callcenter-migrate")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "pre-upgrade"}
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["callcenter migrate && callcenter seed"]
    assert container["image"].endswith("/callcenter-ops:0.1.0")
    assert "DATABASE_URL" in {e["name"] for e in container["env"]}
    no_seed = render({"migrations": {"seed": False}}).get("Job", f"{RELEASE}-callcenter-migrate")
    assert no_seed["spec"]["template"]["spec"]["containers"][0]["args"] == ["callcenter migrate"]
    assert render({"migrations": {"enabled": False}}).of_kind("Job") == []


# --- toggles --------------------------------------------------------------------------------


def test_hpa_on_removes_replicas_and_adds_an_hpa_per_service() -> None:
    out = rendered_ok(HPA_ON)
    hpas = {h["metadata"]["name"]: h for h in out.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {component(s) for s in SERVICES}
    for svc, dep in deployments(out).items():
        assert "replicas" not in dep["spec"], f"{svc}: replicas must be absent when the HPA owns it"
        hpa = hpas[component(svc)]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": component(svc),
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # per-service target from values
    cpu = hpas[component("voice_pipeline")]["spec"]["metrics"][0]["resource"]["target"]
    assert cpu == {"type": "Utilization", "averageUtilization": 50}


def test_voice_hpa_scales_on_each_replicas_call_load() -> None:
    out = rendered_ok(HPA_ON)
    hpa = out.find("HorizontalPodAutoscaler", component("voice_pipeline"))
    assert hpa is not None
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods == [
        {
            "metric": {"name": "voice_load"},
            "target": {"type": "AverageValue", "averageValue": "700m"},
        }
    ]
    voice = deployments(out)["voice_pipeline"]["spec"]["template"]["metadata"]["annotations"]
    assert voice["prometheus.io/scrape"] == "true"  # where voice_load comes from
    assert voice["prometheus.io/port"] == "8001"
    others = [h for h in out.of_kind("HorizontalPodAutoscaler") if h is not hpa]
    assert all(m["type"] == "Resource" for h in others for m in h["spec"]["metrics"])


def test_one_service_can_turn_its_hpa_off_while_the_default_is_on() -> None:
    values = copy.deepcopy(HPA_ON)
    values["tools"] = {"autoscaling": {"enabled": False}, "replicas": 3}
    out = rendered_ok(values)
    assert out.find("HorizontalPodAutoscaler", component("tools")) is None
    assert out.get("Deployment", component("tools"))["spec"]["replicas"] == 3
    assert "replicas" not in out.get("Deployment", component("gateway"))["spec"]


def test_ingress_routes_media_websocket_to_voice_pipeline_and_rest_to_gateway() -> None:
    out = rendered_ok(INGRESS_ON)
    (ingress,) = out.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "cc.example.com"
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert routes["/twilio/media"]["name"] == component("voice_pipeline")
    assert routes["/"]["name"] == component("gateway")
    for backend in routes.values():
        assert backend["port"] == {"name": "http"}
    annotations = ingress["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600
    # Twilio signs against the public URL; the voice webhook hands out the media URL
    env = env_of(out.get("Deployment", component("gateway")))
    assert env["PUBLIC_BASE_URL"]["value"] == "https://cc.example.com"
    assert (
        env["CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL"]["value"]
        == "wss://cc.example.com/twilio/media"
    )


def test_ingress_off_renders_no_ingress() -> None:
    assert render({"ingress": {"enabled": False}}).of_kind("Ingress") == []


def test_dependencies_off_use_external_endpoints() -> None:
    out = rendered_ok(EXTERNAL)
    for svc, dep in deployments(out).items():
        env = env_of(dep)
        assert env["NATS_URL"]["value"] == "nats://nats.messaging:4222"
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "infra",
            "key": "REDIS_URL",
        }
        assert env["DATABASE_URL"]["value"] == "postgresql://cc:pw@db.example:5432/callcenter"
        assert "REDIS_PASSWORD" not in env and "DATABASE_PASSWORD" not in env, svc
    text = yaml.safe_dump_all(out.objects)
    for bundled in (f"{RELEASE}-nats", f"{RELEASE}-redis", f"{RELEASE}-postgresql"):
        assert bundled not in text


def test_per_service_overrides_apply_to_that_service_only() -> None:
    values = {
        "defaults": {"extraEnv": [{"name": "SHARED", "value": "1"}]},
        "conversation": {
            "replicas": 5,
            "resources": {"requests": {"cpu": "750m"}},
            "nodeSelector": {"pool": "cpu-heavy"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}
            ],
            "extraEnv": [{"name": "ONLY_CONVERSATION", "value": "yes"}],
        },
    }
    out = rendered_ok(values)
    conv = out.get("Deployment", component("conversation"))
    pod = conv["spec"]["template"]["spec"]
    assert conv["spec"]["replicas"] == 5
    assert pod["nodeSelector"] == {"pool": "cpu-heavy"}
    assert pod["tolerations"][0]["value"] == "llm"
    resources = pod["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == "750m"
    assert resources["requests"]["memory"] == "384Mi"  # the rest of the map is kept
    assert env_of(conv)["ONLY_CONVERSATION"]["value"] == "yes"
    assert env_of(conv)["SHARED"]["value"] == "1"
    tools = out.get("Deployment", component("tools"))
    assert tools["spec"]["replicas"] == 2
    assert "nodeSelector" not in tools["spec"]["template"]["spec"]
    assert "tolerations" not in tools["spec"]["template"]["spec"]
    assert "ONLY_CONVERSATION" not in env_of(tools)
    assert env_of(tools)["SHARED"]["value"] == "1"


def test_a_service_can_be_disabled() -> None:
    out = rendered_ok({"post_call": {"enabled": False}})
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert out.find(kind, component("post_call")) is None
        assert out.find(kind, component("gateway")) is not None


def test_existing_secret_is_mounted_as_files_and_llm_keys_as_env() -> None:
    out = rendered_ok({"secrets": {"existingSecret": "provider-keys"}})
    assert out.of_kind("Secret") == []
    for dep in deployments(out).values():
        pod = dep["spec"]["template"]["spec"]
        env = env_of(dep)
        assert env["CALLCENTER_SECRETS_DIR"]["value"] == "/var/run/secrets/callcenter"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "provider-keys"
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["secrets"] == "/var/run/secrets/callcenter"
        ref = env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "provider-keys", "key": "OPENAI_API_KEY", "optional": True}


def test_secret_values_create_a_secret() -> None:
    out = rendered_ok(
        {"secrets": {"values": {"TWILIO_AUTH_TOKEN": "t0ken", "OPENAI_API_KEY": "sk-x"}}}
    )
    (secret,) = out.of_kind("Secret")
    assert secret["stringData"] == {"TWILIO_AUTH_TOKEN": "t0ken", "OPENAI_API_KEY": "sk-x"}
    env = env_of(out.get("Deployment", component("gateway")))
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


def test_no_secret_configured_mounts_none() -> None:
    for dep in deployments(render()).values():
        assert "secrets" not in {v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert "CALLCENTER_SECRETS_DIR" not in env_of(dep)


def test_telemetry_endpoint_reaches_every_service() -> None:
    out = render({"telemetry": {"otlpEndpoint": "http://otel-collector.obs:4318"}})
    for dep in deployments(out).values():
        assert (
            env_of(dep)["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.obs:4318"
        )


def test_everything_on_at_once() -> None:
    values = {**EXTERNAL, **HPA_ON, **INGRESS_ON, "secrets": {"existingSecret": "keys"}}
    values["ingress"] = {
        **INGRESS_ON["ingress"],
        "tls": [{"secretName": "tls", "hosts": ["cc.example.com"]}],
    }
    out = rendered_ok(values)
    assert len(out.of_kind("HorizontalPodAutoscaler")) == len(SERVICES)


def test_notes_render() -> None:
    out = run_notes(INGRESS_ON)
    assert "/twilio/media  -> voice pipeline" in out
    assert f"{component('gateway')}:8000" in out
    assert "https://cc.example.com/twilio/voice" in out
    external = run_notes({**EXTERNAL, "secrets": {"existingSecret": "keys"}})
    assert "external nats://nats.messaging:4222" in external
    assert "Secret keys" in external


def run_notes(values: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` prints it (client-side dry run: no cluster involved)."""
    from tests.deploy.helm_chart import _values_file, prepared_chart, run_helm

    out = run_helm(
        "install",
        RELEASE,
        str(prepared_chart()),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "--values",
        _values_file(values),
    )
    assert "NOTES:" in out
    return out.split("NOTES:", 1)[1]


def test_schema_validation_rejects_what_kubernetes_would() -> None:
    """The validator is strict: an unknown field or a wrong type in a rendered object fails."""
    out = render()
    broken = copy.deepcopy(out.get("Deployment", component("tools")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    assert schema_errors(Rendered(objects=[broken]))
    broken = copy.deepcopy(out.get("Service", component("tools")))
    broken["spec"]["ports"][0]["port"] = "eight-thousand"
    assert schema_errors(Rendered(objects=[broken]))


# --- validations: bad values fail with a message that says what to set ------------------------

BAD_VALUES = [
    ({"nats": {"enabled": False}}, "externalNats.url"),
    ({"redis": {"enabled": False}}, "externalRedis.url"),
    ({"postgresql": {"enabled": False}}, "externalDatabase.url"),
    ({"nats": {"config": {"jetstream": {"enabled": False}}}}, "jetstream.enabled must be true"),
    (
        {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2}}},
        "gateway.autoscaling.maxReplicas",
    ),
    (
        {"tools": {"autoscaling": {"enabled": True, "minReplicas": 0}}},
        "tools.autoscaling.minReplicas",
    ),
    (
        {"tools": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 150}}},
        "between 1 and 100",
    ),
    (
        {"tools": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}}},
        "tools.autoscaling needs targetCPUUtilizationPercentage",
    ),
    (
        {"voice_pipeline": {"terminationGracePeriodSeconds": 10, "preStopSleepSeconds": 10}},
        "voice_pipeline.terminationGracePeriodSeconds",
    ),
    ({"conversation": {"replicas": -1}}, "conversation.replicas"),
    ({"post_call": {"port": "http"}}, "post_call.port must be a number"),
    ({"gateway": {"port": 70000}}, "gateway.port must be between"),
    (
        {"defaults": {"pdb": {"minAvailable": 1, "maxUnavailable": 1}}},
        "set only one of minAvailable",
    ),
    (
        {"secrets": {"existingSecret": "a", "values": {"X": "y"}}},
        "either secrets.existingSecret or secrets.values",
    ),
    (
        {"ingress": {"enabled": True}, "voice_pipeline": {"enabled": False}},
        "voice_pipeline.enabled is false",
    ),
    ({"config": {"logging": {"level": "LOUD"}}}, "config.logging.level"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_bad_values_fail_with_a_helpful_message(values: dict[str, Any], message: str) -> None:
    """`helm template` and `helm install` stop with the message (`helm lint` only logs `fail`)."""
    with pytest.raises(HelmError) as template_error:
        render(values)
    assert message in template_error.value.stderr
    with pytest.raises(HelmError) as install_error:
        run_notes(values)
    assert message in install_error.value.stderr


def test_chart_files_config_is_the_repository_config() -> None:
    """files/config.yaml is a link to the root config.yaml, so the ConfigMap never drifts."""
    link = ROOT / "deploy/helm/callcenter/files/config.yaml"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "config.yaml").resolve()


def test_helm_is_the_real_binary() -> None:
    """Guard against a stand-in: the renderer must be helm itself."""
    from tests.deploy.helm_chart import run_helm

    version = run_helm("version", "--short").strip()
    assert re.match(r"v[34]\.\d+\.\d+", version), version
    assert shutil.which("helm") or helm_binary()


@pytest.mark.parametrize(
    "values",
    [{}, EXTERNAL, {**INGRESS_ON, "secrets": {"existingSecret": "k"}}],
    ids=["defaults", "external", "ingress"],
)
def test_each_deployment_env_and_configmap_load_as_the_services_config(
    values: dict[str, Any], tmp_path: Path
) -> None:
    """What a pod gets (ConfigMap file + env) is a valid CallCenterConfig, listening where probed."""
    out = render(values)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        out.get("ConfigMap", f"{RELEASE}-callcenter-config")["data"]["config.yaml"]
    )
    for svc, dep in deployments(out).items():
        env: dict[str, str] = {}
        for name, entry in env_of(dep).items():
            value = entry.get("value", "secret-from-cluster")
            # Kubernetes expands $(VAR) from variables defined earlier in the list
            for ref in re.findall(r"\$\((\w+)\)", value):
                value = value.replace(f"$({ref})", env.get(ref, ""))
            env[name] = value
        env["CALLCENTER_CONFIG"] = str(config_file)
        env.pop("CALLCENTER_SECRETS_DIR", None)
        config = config_from_env(env)
        port = dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        section = getattr(config, svc)
        if svc in ("gateway", "voice_pipeline"):
            assert (section.host, section.port) == ("0.0.0.0", port)
        else:
            assert (section.health_host, section.health_port) == ("0.0.0.0", port)
        assert config.nats.url == env["NATS_URL"]
        assert config.database.url == env["DATABASE_URL"]
