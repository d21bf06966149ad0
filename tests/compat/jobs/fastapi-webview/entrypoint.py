import fastapi
import starlette
from fastapi import FastAPI


class FastapiWebview:
    def perform(self) -> dict:
        """The versions that the job's own code sees."""
        return {"fastapi": fastapi.__version__, "starlette": starlette.__version__}

    def webview_app(self, base_url: str):
        app = FastAPI(root_path=base_url)

        @app.get("/")
        def index() -> dict:
            return {"served_by": "fastapi", "starlette": starlette.__version__}

        @app.get("/items/{item_id}")
        def item(item_id: int) -> dict:
            return {"item_id": item_id}

        return app
