"""The page's language: which one the visitor asked for, the links to the page in each language, and the script that
makes Gradio's front end speak it. No Gradio import here: ui/mount.py uses `early_script` before the page is built.
"""

from __future__ import annotations

import html

from leafdoc.core.i18n import N_, NAMES, UnknownLanguage, gettext, negotiate


def page_language(request) -> str:
    """The language the visitor asked for: the page address's `?lang=` (an unknown one is ignored), else the best
    of their browser's Accept-Language, else English."""
    if request is None:
        return "en"
    params = getattr(request, "query_params", None) or {}
    headers = getattr(request, "headers", None) or {}
    try:
        return negotiate(params.get("lang"), headers.get("accept-language"))
    except UnknownLanguage:
        return negotiate(None, headers.get("accept-language"))


LANGUAGE = N_("Language")


def switch_html(current: str | None = None) -> str:
    """Links to the page in each language (`?lang=`), each named in its own language; the page's own (`current`,
    once the page knows it) marked, and not a link."""
    links = " · ".join(
        f'<strong lang="{code}" aria-current="true">{name}</strong>'
        if code == current
        else f'<a href="?lang={code}" lang="{code}" hreflang="{code}">{name}</a>'
        for code, name in NAMES.items()
    )
    label = gettext(current or "en", LANGUAGE)  # a screen reader names the links' group in the page's language
    return f'<nav id="language-switch" aria-label="{html.escape(label)}">{links}</nav>'


# Gradio's front end reads the browser's language (navigator.language) for the catalogs above, as its scripts load:
# with `?lang=` in the address, this makes it read that one instead. It must run before them, so it is put at the top
# of the page's HTML as it is sent (`early_script`); Gradio's own `head` is added to the page after its catalogs.
SWITCH_HEAD = """<script>
(function () {
  var lang = new URLSearchParams(window.location.search).get("lang");
  if (!lang || !/^(en|es|fr|hi)([-_][A-Za-z0-9]+)?$/.test(lang)) return;
  var code = lang.slice(0, 2);
  try {
    var own = function (value) { return { get: function () { return value; }, configurable: true }; };
    Object.defineProperty(Navigator.prototype, "language", own(code));
    Object.defineProperty(Navigator.prototype, "languages", own([code]));
  } catch (e) {}
  document.documentElement.setAttribute("lang", code);
})();
</script>"""


def early_script(send, script: bytes = SWITCH_HEAD.encode()):
    """`send` that puts `script` right after the <head> of an HTML answer (the page itself), with its new
    Content-Length; other answers, and answers with a Content-Encoding, pass as they are."""
    start: dict | None = None
    held = b""

    async def wrapped(message) -> None:
        nonlocal start, held
        if message["type"] == "http.response.start":
            headers = dict((k.lower(), v) for k, v in message.get("headers", []))
            html = headers.get(b"content-type", b"").split(b";")[0].strip() == b"text/html"
            if html and b"content-encoding" not in headers:
                start = message
                return
        elif message["type"] == "http.response.body" and start is not None:
            held += message.get("body", b"")
            if message.get("more_body", False):
                return
            body = held.replace(b"<head>", b"<head>" + script, 1)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped


SWITCH_CSS = """
#language-switch { text-align: right; font-size: 0.95em; margin: 0 0 0.3em 0; }
#language-switch a { text-decoration: none; padding: 0 0.2em; }
#language-switch strong { padding: 0 0.2em; border-bottom: 2px solid currentColor; }
"""
