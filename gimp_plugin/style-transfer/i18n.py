"""The plug-in's translations: `_` for messages it shows, `N_` for texts GIMP translates itself (menu label, help).

Both use one gettext domain and one catalogue folder beside the plug-in; GIMP is told about them in do_set_i18n,
so the menu and the dialog are translated by the same catalogue, once one ships.
"""

from __future__ import annotations

import gettext
import os

DOMAIN = "stylecore-gimp"
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
_ = gettext.translation(DOMAIN, LOCALE_DIR, fallback=True).gettext


def N_(message: str) -> str:
    """Marks a string for translation where GIMP translates it later (menu label, documentation)."""
    return message


def gimp_i18n() -> tuple[bool, str | None, str | None]:
    """What do_set_i18n answers: our domain and catalogue folder when catalogues ship, else no translation."""
    return (True, DOMAIN, LOCALE_DIR) if os.path.isdir(LOCALE_DIR) else (False, None, None)
