from flask import Blueprint

bp = Blueprint("console", __name__, template_folder="../../templates/console")

from app.web.console import lines, money, supply, views  # noqa: E402,F401
