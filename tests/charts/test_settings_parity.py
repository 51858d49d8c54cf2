"""Each Deployment's environment against its service's Settings class (derived from the class,
so it follows whatever settings are added or renamed): every setting the service cannot do
without is provided, nothing is set that the class does not know, and the values parse."""

import importlib
import re
import secrets

import pytest
import yaml

from tests.charts.conftest import CHARTS, COMPONENT_TOGGLES, rendered_secrets

SETTINGS = {
    "payments": "payments.core.config:Settings",
    "merchants": "merchants.core.config:Settings",
    "gateway": "gateway.core.config:Settings",
    "providers": "providers.core.config:Settings",
    "webhooks": "webhooks.core.config:Settings",
    "relay": "workers.relay.config:RelaySettings",
    "notifier": "workers.notifier.config:NotifierSettings",
    "sim-a": "simulator.core.config:Settings",
    "sim-b": "simulator.core.config:Settings",
}
REFERENCE = re.compile(r"\$\((\w+)\)")


def settings_class(component: str):
    module, name = SETTINGS[component].split(":")
    return getattr(importlib.import_module(module), name)


def needed(cls) -> set[str]:
    """Settings a pod must be given: required ones, secrets (defaults are refused outside local
    mode) and any whose default points at this machine (127.0.0.1 means nothing in a pod)."""
    names = set(cls.secret_fields())
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if field.is_required() or "127.0.0.1" in str(default):
            names.add(name)
    return names


def environment(deployment) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def resolved(env: dict[str, dict], generated: dict) -> dict[str, str]:
    """Values as the pod sees them: references to the chart's own Secrets get their rendered
    values, other Secrets (made by CloudNativePG, RabbitMQ) random strings; $(VAR) expands."""

    def value(item: dict) -> str:
        if "value" in item:
            return item["value"]
        ref = item["valueFrom"]["secretKeyRef"]
        return generated.get((ref["name"], ref["key"]), secrets.token_urlsafe(32))

    plain = {n: value(e) for n, e in env.items()}
    return {n: REFERENCE.sub(lambda m: plain[m.group(1)], v) for n, v in plain.items()}


def test_every_component_has_a_settings_class():
    assert set(SETTINGS) == set(COMPONENT_TOGGLES) - {"ingress", "operator"}


def test_operator_env_matches_its_settings(renderer):
    """The operator is checked the same way once its package (payplane_operator) is in."""
    config = pytest.importorskip("payplane_operator.config", reason="operator package not merged")
    cls = config.Settings
    deployment = next(d for d in renderer.docs("operator") if d["kind"] == "Deployment")
    env = environment(deployment)
    assert {v for v in env if not v.startswith("OTEL_")} <= set(cls.model_fields)
    assert needed(cls) <= set(env)


@pytest.mark.parametrize("component", sorted(SETTINGS))
def test_deployment_env_matches_settings(profile, component):
    name, docs = profile
    deployments = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == component
    ]
    if not deployments:
        pytest.skip(f"{component} is disabled in the {name} values")
    cls = settings_class(component)
    env = environment(deployments[0])
    referenced = {ref for e in env.values() for ref in REFERENCE.findall(e.get("value", ""))}
    for var in env:
        known = var in cls.model_fields or var.startswith("OTEL_")
        helper = var.startswith("_") and var in referenced
        assert known or helper, f"{component}: {var} is not a setting of {cls.__name__}"
    missing = needed(cls) - set(env)
    assert not missing, f"{component} lacks {sorted(missing)}"
    generated = rendered_secrets(docs)
    values = {k: v for k, v in resolved(env, generated).items() if k in cls.model_fields}
    settings = cls(_env_file=None, **values)
    assert settings.ENVIRONMENT == "production"
    assert settings.PORT == int(env["PORT"]["value"])


@pytest.mark.parametrize("component", sorted(SETTINGS))
def test_accepted_callers_are_allowed_by_the_service(component):
    """A chart hands a service public keys only of callers its Settings allow, and only of
    callers the umbrella makes keys for."""
    chart = "simulator" if component.startswith("sim-") else component
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    umbrella = yaml.safe_load((CHARTS / "payplane" / "values.yaml").read_text())
    callers = set(umbrella["internalKeys"]["callers"])
    allowed = set(settings_class(component)().INTERNAL_ALLOWED_CALLERS)
    accepted = set(values["internalCallers"])
    assert accepted <= allowed & callers
    assert accepted == (allowed & callers), f"{component} would refuse a caller it allows"
    assert values["connections"]["internalCaller"] == (component in callers)
