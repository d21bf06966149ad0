"""``GET /docs``: a Swagger UI page over ``openapi.json``, with its assets served by the job itself.

The assets come from the ``swagger-ui-bundle`` package (no CDN). Every URL in the page is relative,
so that it works at the root and under ``/pub/job/NAME/VERSION`` alike.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/swagger-ui"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="swagger-ui/swagger-ui.css">
  <link rel="icon" type="image/png" href="swagger-ui/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


def assets_directory() -> Path:
    """Where ``swagger-ui-bundle`` keeps the Swagger UI files.

    A plain import statement, so that vendoring (``vendoring.py``) finds and renames it.
    """
    import swagger_ui_bundle  # type: ignore[import-untyped]  # no type information

    return Path(str(swagger_ui_bundle.swagger_ui_path))


async def docs(request: Request) -> HTMLResponse:
    title = request.app.state.settings.job_name or "Racetrack job"
    return HTMLResponse(PAGE.format(title=html.escape(f"{title} - Swagger UI")))


async def docs_with_slash(request: Request) -> RedirectResponse:
    # Relative asset URLs would resolve under /docs/; send the browser back to /docs.
    return RedirectResponse("../docs", status_code=307)


def routes() -> list[Route | Mount]:
    return [
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/", docs_with_slash, methods=["GET"]),
        Mount(ASSETS_PATH, app=StaticFiles(directory=assets_directory()), name="swagger-ui"),
    ]
