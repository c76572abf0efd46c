"""ASGI entry point for uvicorn: ``lianka.web.asgi:app``."""

from lianka.web.app import create_app

app = create_app()
