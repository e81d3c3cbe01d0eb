from flask import Blueprint

bp = Blueprint("store", __name__, template_folder="../../templates/store")

from app.web.store import money, purchase, selfcare, termination, tickets, views  # noqa: E402,F401
