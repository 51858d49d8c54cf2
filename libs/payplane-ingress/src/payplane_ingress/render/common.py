"""What every part of the Envoy configuration shares: type URLs, durations, problem bodies."""

from typing import Any

T = "type.googleapis.com/envoy."
LISTENER, ROUTES = "ingress", "ingress-routes"
ALWAYS = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
DYNAMIC_DIR_PLACEHOLDER = "__DYNAMIC_DIR__"  # replaced by files.write_all with the real folder


def duration(ms: int) -> str:
    return f"{ms / 1000:.3f}s"


def header(key: str, value: str) -> dict[str, Any]:
    """A response header that replaces any of the same name."""
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def problem(status: int, slug: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": f"https://payplane.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": "%REQ(X-REQUEST-ID)%",
    }


def watched(kind: str) -> dict[str, Any]:
    """A file-based xDS source that Envoy reloads when its directory changes."""
    return {
        "path": f"{DYNAMIC_DIR_PLACEHOLDER}/{kind}.json",
        "watched_directory": {"path": DYNAMIC_DIR_PLACEHOLDER},
    }


def without_type(resource: dict[str, Any], *also: str) -> dict[str, Any]:
    """The resource as an inline (static) one: no ``@type`` (and none of ``also``)."""
    return {k: v for k, v in resource.items() if k not in ("@type", *also)}
