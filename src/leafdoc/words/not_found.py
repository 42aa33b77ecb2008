"""The page a browser gets for an address that is none of leafdoc's pages (a mistyped link, an old bookmark) under
/app (offline/routes.py) and under /ui (ui/mount.py): in the browser's language, in the offline page's style, with a
link to the page it was under. It never repeats the address: a link could carry markup in it."""

from __future__ import annotations

import html

from leafdoc.core.i18n import N_, gettext, negotiate

NOT_FOUND_TITLE = N_("Page not found")
NOT_FOUND_SAID = N_("There is no page at this address.")
NOT_FOUND_LINK = N_("Open the leafdoc page")
APP_CSS = "/app/app.css"  # the offline page's style sheet, served beside /ui by every leafdoc server

NOT_FOUND_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — leafdoc</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<header><div class="top"><h1>leafdoc</h1></div></header>
<main>
<h2>{title}</h2>
<p>{said}</p>
<p><a id="back" href="{back}">{link}</a></p>
</main>
</body>
</html>
"""


def not_found_html(accept_language: str | None, root_path: str, page: str) -> str:
    """The page, in the browser's language: `root_path` the prefix leafdoc is served under (a proxy's), `page` the
    page to link back to (`/app`, `/ui`)."""
    lang = negotiate(None, accept_language)
    said = {"title": NOT_FOUND_TITLE, "said": NOT_FOUND_SAID, "link": NOT_FOUND_LINK}
    words = {key: html.escape(gettext(lang, text)) for key, text in said.items()}
    css = html.escape(root_path + APP_CSS, quote=True)
    back = html.escape(f"{root_path}{page}/", quote=True)
    return NOT_FOUND_PAGE.format(lang=lang, css=css, back=back, **words)
