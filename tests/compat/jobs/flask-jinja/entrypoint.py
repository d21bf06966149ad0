from importlib import metadata

import jinja2
from flask import Flask, render_template


class FlaskJinja:
    def perform(self, name: str) -> dict:
        """Render a greeting with the job's own Jinja2."""
        template = jinja2.Environment(loader=jinja2.FileSystemLoader("templates"))
        page = template.get_template("greeting.html").render(name=name, version=jinja2.__version__)
        return {
            "page": page,
            "jinja2": jinja2.__version__,
            "flask": metadata.version("flask"),
        }

    def docs_input_example(self) -> dict:
        return {"name": "Ada"}

    def webview_app(self, base_url: str):
        app = Flask(__name__, template_folder="templates")

        @app.route(base_url + "/")
        def index():
            return render_template("greeting.html", name="webview", version=jinja2.__version__)

        return app.wsgi_app
