from flask import Blueprint

bp = Blueprint("store", __name__, template_folder="../../templates/store")

from app.web.store import (  # noqa: E402,F401
    market_exit,
    money,
    purchase,
    selfcare,
    termination,
    tickets,
    views,
)
