"""The shipped translation catalogs are complete, consistent and compiled.

Source strings are English; zh_Hans (the default locale) must translate every
one of them. After changing user-facing strings run scripts/i18n.sh, translate
what it adds to app/translations/zh_Hans/LC_MESSAGES/messages.po, and run it
again to compile.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"
LOCALES = ("zh_Hans", "en")
# Babel's defaults (_, gettext, ngettext, N_, …) plus the lazy forms; keep in
# step with the -k options in scripts/i18n.sh.
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None}
# Any %-conversion: %(name)s, %(role)r, %s, %%.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")


@cache
def extracted() -> dict[tuple[str | tuple[str, ...], str | None], str]:
    """Every message in the source now, keyed by (msgid, context), with where it is."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[tuple[str | tuple[str, ...], str | None], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.setdefault((message, context), f"{filename}:{lineno}")
    return found


@cache
def po(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale)


def translated(catalog: Catalog) -> dict[tuple[object, object], object]:
    """What a compiled catalog holds: non-empty, non-fuzzy translations, header excluded.

    Plural entries are keyed by their tuple of ids; an empty plural form compiles
    as the msgid of its form, so it is compared that way.
    """
    out: dict[tuple[object, object], object] = {}
    for m in catalog:
        if not m.id or not m.string or m.fuzzy:
            continue
        if isinstance(m.id, (list, tuple)):
            ids = tuple(m.id)
            strings = m.string if isinstance(m.string, (list, tuple)) else (m.string,)
            out[(ids, m.context)] = tuple(s or ids[min(i, 1)] for i, s in enumerate(strings))
        else:
            out[(m.id, m.context)] = m.string
    return out


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_extraction_finds_the_known_sources() -> None:
    # Guards the test itself: Python (_, _l, N_) and Jinja templates all extract.
    ids = {msgid for msgid, _context in extracted()}
    assert {"Service hotline:", "E-mail", "admin", "Dashboard", "Plans"} <= ids


def test_every_source_message_is_translated_to_zh_hans() -> None:
    catalog = po("zh_Hans")
    problems = []
    for (msgid, context), where in extracted().items():
        message = catalog.get(msgid, context)
        if message is None:
            problems.append(f"missing: {msgid!r} ({where})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where})")
        elif not (all(message.string) if isinstance(msgid, tuple) else message.string):
            problems.append(f"untranslated: {msgid!r} ({where})")
    assert not problems, "run scripts/i18n.sh and translate:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders(locale: str) -> None:
    mismatched = []
    for message in po(locale):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set().union(*map(placeholders, ids))
        for string in strings:
            if string and placeholders(string) != expected:
                mismatched.append(f"{message.id!r} -> {string!r}")
    assert not mismatched, "\n".join(mismatched)


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_the_po(locale: str) -> None:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = read_mo(f)
    assert translated(compiled) == translated(po(locale)), (
        f"{locale} messages.mo is stale; run scripts/i18n.sh"
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from app import create_app
    from app.core.config import Settings
    from app.core.migrate import upgrade

    tmp_path = tmp_path_factory.mktemp("i18n")
    settings = Settings.from_env(
        {
            "DATABASE_URL": "sqlite:///" + str(tmp_path / "x.db"),
            "SECRET_KEY": "t",
            "PASSWORD_HASH_PROFILE": "cheap",
            "COOKIE_SECURE": "0",
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    app = create_app(settings)
    upgrade(app.extensions["mvno.db"].engine)
    return app.test_client()


def test_store_renders_in_chinese_by_default(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "客服热线：" in page
    assert "套餐" in page
    assert "Service hotline" not in page


def test_store_renders_in_english_on_request(client) -> None:
    response = client.get("/?lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Service hotline" in page
    assert "Plans" in page
    assert "客服热线" not in page
