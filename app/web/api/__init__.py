from apiflask import APIBlueprint

bp = APIBlueprint("api", __name__, tag="Platform")

from app.web.api import views  # noqa: E402,F401
