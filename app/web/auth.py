"""Flask-Login wiring and the permission check every console route carries.

Staff and subscribers are separate tables with separate login pages; the
session remembers which kind is signed in ("staff:<id>:<stamp>" or
"subscriber:<id>:<stamp>"). The stamp is derived from the password hash,
so changing a password signs out every other session of that account.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from apiflask import APIFlask
from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_user, logout_user

from app.auth.errors import InvalidCredentials, LoginLocked
from app.auth.models import StaffUser, SubscriberAccount
from app.auth.permissions import role_can
from app.auth.services import LoginPolicy, authenticate_staff, authenticate_subscriber
from app.core.clock import utcnow
from app.web.context import client_ip, db_session, settings
from app.web.forms import LoginForm

F = TypeVar("F", bound=Callable[..., Any])


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:12]


@dataclass
class SignedIn:
    """The signed-in person as Flask-Login sees them."""

    kind: str  # "staff" | "subscriber"
    id: int
    email: str
    role: str | None
    name: str
    stamp: str

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.kind}:{self.id}:{self.stamp}"

    def can(self, permission: str) -> bool:
        return self.kind == "staff" and self.role is not None and role_can(self.role, permission)

    @classmethod
    def from_staff(cls, user: StaffUser) -> SignedIn:
        assert user.id is not None
        return cls("staff", user.id, user.email, user.role, user.name, _stamp(user.password_hash))

    @classmethod
    def from_subscriber(cls, account: SubscriberAccount) -> SignedIn:
        assert account.id is not None
        return cls(
            "subscriber",
            account.id,
            account.email,
            None,
            account.display_name,
            _stamp(account.password_hash),
        )


def _load(user_id: str) -> SignedIn | None:
    kind, _, rest = user_id.partition(":")
    raw_id, _, stamp = rest.partition(":")
    if not raw_id.isdigit():
        return None
    if kind == "staff":
        user = db_session().get(StaffUser, int(raw_id))
        signed = SignedIn.from_staff(user) if user and user.is_active else None
    elif kind == "subscriber":
        account = db_session().get(SubscriberAccount, int(raw_id))
        signed = SignedIn.from_subscriber(account) if account and account.is_active else None
    else:
        return None
    return signed if signed and signed.stamp == stamp else None


def init_login(app: APIFlask) -> None:
    manager = LoginManager()
    manager.session_protection = "strong"
    manager.user_loader(_load)

    @manager.unauthorized_handler
    def unauthorized() -> Any:
        if request.blueprint == "console":
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("store.login", next=request.full_path.rstrip("?")))

    manager.init_app(app)


def login_policy() -> LoginPolicy:
    s = settings()
    return LoginPolicy(
        max_failures=s.login_max_failures,
        lockout_minutes=s.login_lockout_minutes,
        max_failures_per_ip=s.login_max_failures_per_ip,
    )


def sign_in(person: SignedIn) -> None:
    # A fresh session on every login defeats session fixation.
    session.clear()
    login_user(person)


def sign_out() -> None:
    logout_user()
    session.clear()


def safe_next(target: str | None, fallback: str) -> str:
    """Only same-site relative paths are followed after login."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target:
        return fallback
    return target


def staff_required(permission: str) -> Callable[[F], F]:
    """Allow staff whose role grants `permission`; others get the login page or 403."""
    role_can("admin", permission)  # fail at import time on an unknown permission name

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or current_user.kind != "staff":
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
            if not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = permission  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator


def subscriber_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or current_user.kind != "subscriber":
            return redirect(url_for("store.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    wrapped.subscriber_only = True  # type: ignore[attr-defined]
    return cast(F, wrapped)


def authenticate_form(
    form: LoginForm, *, kind: str
) -> tuple[StaffUser | SubscriberAccount | None, int]:
    """Check a validated login form's credentials: (the person, 200), or (None, the
    refusal's status: 401, 429) with the reason on the form. The attempt is recorded."""
    authenticate = authenticate_staff if kind == "staff" else authenticate_subscriber
    try:
        person = authenticate(
            db_session(),
            email=form.email.data or "",
            password=form.password.data or "",
            ip=client_ip(),
            policy=login_policy(),
            now=utcnow(),
        )
    except LoginLocked as exc:
        form.form_errors.append(_("Too many failed logins. Try again later."))
        return None, exc.http_status
    except InvalidCredentials as exc:
        form.form_errors.append(_("Wrong e-mail or password."))
        return None, exc.http_status
    return person, 200


def login_page(*, kind: str, template: str, home_endpoint: str) -> Any:
    """The login form flow shared by the console (staff) and the store (subscribers).

    Wrong credentials and lockouts are shown on the form with their status
    (401, 429); the attempt itself is recorded and committed either way.
    """
    if current_user.is_authenticated and current_user.kind == kind:
        return redirect(url_for(home_endpoint))
    form = LoginForm()
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        person, status = authenticate_form(form, kind=kind)
        if isinstance(person, StaffUser):
            sign_in(SignedIn.from_staff(person))
        elif person is not None:
            sign_in(SignedIn.from_subscriber(person))
        if person is not None:
            return redirect(safe_next(request.args.get("next"), url_for(home_endpoint)))
    return render_template(template, form=form), status
