"""The web UI: a few ES modules, one stylesheet and one HTML page, served by the same process at `/` (the API stays
under `/v1`). No build step and nothing fetched from elsewhere at run time: every byte the page needs is here.

The pages call the OpenAI API and `/v1/ui/*` (server/serving_ui.py) with the key the login form keeps for the
session; the assets themselves need no key (they hold no data). A strict Content-Security-Policy lets the page run
only its own scripts and talk only to this server: notes and model output are untrusted, and the Markdown renderer
(static/md.js) escapes them, with the policy as a second wall.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidated (ETag): an upgraded server never runs yesterday's page
}


class _Assets(StaticFiles):
    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_ui(app: FastAPI) -> None:
    """`/` is the page, `/ui/*` its assets."""

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    @app.get("/ui", include_in_schema=False)
    async def ui_root():
        return RedirectResponse("/")

    app.mount("/ui", _Assets(directory=STATIC), name="ui")
