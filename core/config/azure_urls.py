"""Azure OpenAI upstream URLs from a group's instanceName and baseURL, as LibreChat builds them.

Shared by the rules (validate.py), which check that a URL can be built, and by resolution
(resolve.py), which builds it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .schema import Group

INSTANCE_NAME = "${INSTANCE_NAME}"
DEPLOYMENT_NAME = "${DEPLOYMENT_NAME}"


def deployment_url(group: Group, deployment: str) -> str:
    """`.../openai/deployments/{deployment}`, without a trailing slash."""
    if not group.base_url:
        return f"{azure_origin(group.instance_name or '')}/openai/deployments/{deployment}"
    template = group.base_url
    url = template.replace(INSTANCE_NAME, group.instance_name or "")
    url = url.replace(DEPLOYMENT_NAME, deployment).rstrip("/")
    path = urlsplit(url).path
    # The deployment is already in the URL (placeholder, or written out as in the Cloudflare example), or the URL
    # names another one, which LibreChat sends every model of the group to: use it as is.
    if DEPLOYMENT_NAME in template or deployment in path.split("/") or named_deployment(group):
        return url
    if path.endswith("/openai"):
        return f"{url}/deployments/{deployment}"
    return f"{url}/openai/deployments/{deployment}"


def resource_root(group: Group, deployment: str) -> str | None:
    """The Azure resource root (`https://host[/prefix]`) under which `/openai/...` lives, or
    None when the baseURL does not show one (e.g. `https://apim/${INSTANCE_NAME}/${DEPLOYMENT_NAME}`)."""
    if not group.base_url:
        return azure_origin(group.instance_name or "")
    url = deployment_url(group, deployment)
    suffix = f"/openai/deployments/{named_deployment(group) or deployment}"  # a literal URL: as it is written
    if not deployment or not url.endswith(suffix):
        return None
    root = url[: -len(suffix)]
    parts = urlsplit(root)
    # A root still holding /openai/deployments/ comes from a baseURL naming another deployment.
    if not parts.scheme or not parts.netloc or "/openai/deployments/" in f"{parts.path}/":
        return None
    return root


def azure_origin(instance_name: str) -> str:
    """`https://{instance}.openai.azure.com`, or the instance itself when it is already a host."""
    if ".azure.com" in instance_name:
        host = instance_name.split("://", 1)[-1].rstrip("/")
        return f"https://{host}"
    return f"https://{instance_name}.openai.azure.com"


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an upstream base (Backend.url() appends the operation and `?api-version`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "is not an http:// or https:// URL"
    if parts.query or parts.fragment:
        return "has a query string or fragment, but the gateway adds ?api-version= itself"
    return None


def named_deployment(group: Group) -> str | None:
    """The deployment a literal baseURL (one without ${DEPLOYMENT_NAME}) already names, if any:
    the segment after /deployments/, else a served model's deployment written out as a segment
    (as in Cloudflare's `.../azure-openai/{resource}/{deployment}`)."""
    if group.serverless or not group.base_url or DEPLOYMENT_NAME in group.base_url:
        return None
    url = group.base_url.replace(INSTANCE_NAME, group.instance_name or "")
    segments = urlsplit(url).path.rstrip("/").split("/")
    if "deployments" in segments[:-1]:
        return segments[segments.index("deployments") + 1]
    deployments = (group.deployment_for(spec) for spec in group.served_models().values())
    return next((deployment for deployment in deployments if deployment and deployment in segments), None)
