"""The API documentation pages (``/schema``: Scalar, ``/schema/swagger``: Swagger UI), with their
viewers served from ``web/static/apidocs`` instead of a CDN.

Litestar's render plugins load the viewers from a CDN — Scalar at its moving ``latest`` — plus a
CDN favicon and stylesheet, and start Swagger UI with an inline script carrying the whole schema.
That fails offline and would need a Content-Security-Policy open to a third party and to inline
scripts. These pages load only files of this server and no inline script, so their CSP
(:data:`lianka.web.middleware.DOCS_CSP`) is ``script-src 'self'``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Router
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/static/apidocs"
ASSETS_DIR = Path(__file__).resolve().parent / "static" / "apidocs"
#: no favicon request at all (the default one is on a CDN)
_FAVICON = '<link rel="icon" href="data:,">'
#: Scalar fetches web fonts and sends telemetry by default; the CSP would refuse both anyway
_SCALAR_OPTIONS = {"withDefaultFonts": False, "telemetry": False}


def _head(title: str, extra: str = "") -> str:
    return (
        f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{_FAVICON}{extra}</head>"
    )


class LocalScalar(ScalarRenderPlugin):
    def __init__(self, path: str = "/scalar") -> None:
        super().__init__(js_url=f"{ASSETS_PATH}/scalar/standalone.js", path=path, options=_SCALAR_OPTIONS)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The configuration travels in a ``data-configuration`` attribute, not an inline script."""
        url = html.escape(self.get_openapi_json_route(request), quote=True)
        config = html.escape(msgspec.json.encode(self.options).decode(), quote=True)
        return (
            "<!DOCTYPE html><html>"
            + _head(openapi_schema["info"]["title"])
            + "<body><noscript>The API reference needs JavaScript; the schema itself is at "
            f'<a href="{url}">{url}</a>.</noscript>'
            f'<script id="api-reference" data-url="{url}" data-configuration="{config}"></script>'
            f'<script src="{html.escape(self.js_url, quote=True)}"></script></body></html>'
        ).encode()


class LocalSwagger(SwaggerRenderPlugin):
    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(
            js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            path=path,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Swagger UI fetches the schema itself (``data-url``), started by ``swagger-init.js``."""
        url = html.escape(self.get_openapi_json_route(request), quote=True)
        css = f'<link rel="stylesheet" href="{html.escape(self.css_url, quote=True)}">'
        return (
            "<!DOCTYPE html><html>"
            + _head(openapi_schema["info"]["title"], css)
            + f'<body><div id="swagger-ui" data-url="{url}"></div>'
            f'<script src="{html.escape(self.js_url, quote=True)}"></script>'
            f'<script src="{ASSETS_PATH}/swagger-init.js"></script></body></html>'
        ).encode()

    def receive_router(self, router: Router) -> None:
        """No ``oauth2-redirect.html``: it is an inline script, and no browser OAuth2 flow here needs it
        (staff use bearer tokens, tills client credentials)."""


def render_plugins() -> list[LocalScalar | LocalSwagger]:
    """Scalar first: it also answers ``/schema`` itself."""
    return [LocalScalar(), LocalSwagger()]


def assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH, directories=[ASSETS_DIR], include_in_schema=False, name="apidocs-assets"
    )
