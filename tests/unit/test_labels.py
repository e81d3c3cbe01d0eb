"""label() resolves the kinds that the models modules list in their LABELS."""

from __future__ import annotations

from types import ModuleType

import pytest
from flask_babel import gettext

from app.core.floors import discover
from app.web import label


def _labelled_modules() -> list[ModuleType]:
    return [module for module in discover("models") if hasattr(module, "LABELS")]


def test_the_models_modules_with_labels():
    names = {module.__name__ for module in _labelled_modules()}
    assert {
        "app.auth.models",
        "numbering.models",
        "plans.models",
        "wholesale.models",
        "app.subscribers.models",
        "app.payments.models",
        "app.provisioning.models",
        "app.notifications.models",
        "app.care.models",
    } <= names


def test_every_label_dict_of_a_models_module_is_in_its_labels():
    for module in _labelled_modules():
        listed = [id(codes) for codes in module.LABELS.values()]
        for name, value in vars(module).items():
            if name.endswith("_LABELS") and isinstance(value, dict):
                assert id(value) in listed, f"{module.__name__}.{name} is not in LABELS"


@pytest.mark.parametrize("module", _labelled_modules(), ids=lambda module: module.__name__)
def test_a_label_kind_of_each_models_module_resolves(app, module):
    with app.test_request_context("/"):
        for kind, codes in module.LABELS.items():
            for code, text in codes.items():
                assert label(kind, code) == gettext(text)
            assert label(kind, "no-such-code") == "no-such-code"
