from flask import Blueprint

bp = Blueprint("store", __name__, template_folder="../../templates/store")

from app.web.store import market_exit, money, purchase, selfcare, tickets, views  # noqa: E402,F401
