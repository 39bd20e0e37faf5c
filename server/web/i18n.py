"""The pages' languages: Chinese by default, English on request (Flask-Babel).

Messages are written in English in the code and the templates; the Chinese
catalog is ``server/translations/zh/LC_MESSAGES/messages.po``, committed as
text. Flask-Babel reads compiled ``.mo`` files, and a compiled file in the
repository would drift from its source, so the app compiles the catalogs when
it starts (`compile_catalogs`): into a folder under the system's temp dir
named by a hash of the ``.po`` files, built aside and renamed into place, so
processes that start together (gunicorn workers, tests) share it safely, and
an edited ``.po`` is picked up at the next start. It costs a few milliseconds
once per process. A fresh clone needs no manual step.

To add or change a message: edit the template or code, then from the
repository root ``pybabel extract -F server/translations/babel.cfg -k _l -o
/tmp/messages.pot .`` and ``pybabel update -i /tmp/messages.pot -d
server/translations``, translate, and run ``tests/pages/test_i18n.py``, which
fails on any message without a Chinese translation (docs/pages.md).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, session
from flask_babel import Babel

SOURCE = Path(__file__).parent.parent / "translations"  # server/translations
LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"
_compiled: dict[str, str] = {}  # digest -> folder, so one process compiles once


def _catalogs(source: Path) -> list[Path]:
    return sorted(source.glob("*/LC_MESSAGES/*.po"))


def compile_catalogs(source: Path = SOURCE) -> str:
    """A folder holding every catalog under ``source`` compiled to .mo; built once per content."""
    catalogs = _catalogs(source)
    digest = hashlib.sha256()
    for path in catalogs:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    key = digest.hexdigest()[:16]
    if key in _compiled:
        return _compiled[key]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    target = Path(tempfile.gettempdir()) / f"gridpatrol-i18n-{uid}-{key}"
    if not (target / "complete").is_file():
        building = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        for path in catalogs:
            out = building / path.relative_to(source).with_suffix(".mo")
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as handle:
                catalog = read_po(handle)
            with open(out, "wb") as handle:
                write_mo(handle, catalog)
        (building / "complete").write_text(key)
        try:
            os.rename(building, target)  # atomic; another process may have won the race
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
            if not (target / "complete").is_file():
                raise
    _compiled[key] = str(target)
    return str(target)


def select_language() -> str:
    """The language of this request: the one the user switched to, else Chinese."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else current_app.config.get("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)


def init_app(app) -> None:
    """Compile the catalogs and configure Flask-Babel with Chinese as the default."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = compile_catalogs()
    Babel(app, locale_selector=select_language)
