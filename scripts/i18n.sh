#!/usr/bin/env bash
# Translations: `update` extracts every marked string (core.i18n.translate,
# QT_TRANSLATE_NOOP) from app/ and core/ into resources/i18n/rustronaut_<lang>.ts;
# `build` (the default) compiles the .ts files into the .qm files the tray loads.
# I18N_OUT=<dir> writes the updated .ts files there instead (a test compares them with
# the committed ones: a string added without its translation fails it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV_BIN:-.venv/bin}"
LANGS=(de)
case "${1:-build}" in
  update)
    mapfile -t sources < <(git ls-files 'app/*.py' 'core/*.py')
    for lang in "${LANGS[@]}"; do
      ts="${I18N_OUT:-resources/i18n}/rustronaut_$lang.ts"
      before=$(mktemp)
      cp "resources/i18n/rustronaut_$lang.ts" "$before" 2>/dev/null || true
      [ "$ts" = "resources/i18n/rustronaut_$lang.ts" ] || cp "$before" "$ts"
      "$BIN/pyside6-lupdate" -no-obsolete -locations none -source-language en \
        -target-language "$lang" "${sources[@]}" -ts "$ts" >/dev/null
      # lupdate marks plurals only for self.tr(text, "", n): every "%n" text is one.
      "$BIN/python" -m core.i18n numerus "$ts" "$before"
      rm -f "$before"
    done
    ;;
  build)
    [ -x "$BIN/pyside6-lrelease" ] || { echo "i18n: no $BIN/pyside6-lrelease" >&2; exit 1; }
    for lang in "${LANGS[@]}"; do
      "$BIN/pyside6-lrelease" -silent "resources/i18n/rustronaut_$lang.ts" \
        -qm "resources/i18n/rustronaut_$lang.qm"
    done
    ;;
  *) echo "usage: $0 [update|build]" >&2; exit 2 ;;
esac
