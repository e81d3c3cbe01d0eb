#!/usr/bin/env bash
# Refresh the translation catalogs after adding or changing user-facing strings.
#
# Usage (from anywhere in the checkout):
#   scripts/i18n.sh
#
# It re-extracts every message from app/**.py and app/templates/**.html
# (mapping in babel.cfg) into app/translations/messages.pot, merges the
# template into the zh_Hans and en catalogs with `pybabel update`, and compiles
# them to .mo files. Afterwards translate the new or changed entries in
# app/translations/zh_Hans/LC_MESSAGES/messages.po (empty msgstr, or marked
# "#, fuzzy" — review those and delete the fuzzy flag), run this script once
# more to compile, and commit the .pot, .po and .mo files together.
# The en catalog keeps empty msgstr: English is the source language.
# tests/unit/test_i18n.py fails while any message is missing, untranslated,
# fuzzy, or compiled from an older .po.
#
# Keywords beyond Babel's defaults (_ gettext ngettext N_ …): lazy_gettext, _l.
# Keep them in step with KEYWORDS in tests/unit/test_i18n.py.
set -euo pipefail

cd "$(dirname "$0")/.."

PYBABEL=.venv/bin/pybabel
[[ -x $PYBABEL ]] || PYBABEL=pybabel

DIR=app/translations
POT=$DIR/messages.pot
LOCALES=(zh_Hans en)

"$PYBABEL" extract -F babel.cfg \
    -k _ -k gettext -k ngettext:1,2 -k lazy_gettext -k _l -k N_ \
    --project=mvno --version=0.1.0 --no-wrap --sort-by-file \
    -o "$POT" .

for locale in "${LOCALES[@]}"; do
    "$PYBABEL" update -i "$POT" -d "$DIR" -l "$locale" --no-wrap --ignore-obsolete
done

"$PYBABEL" compile -d "$DIR" --statistics
