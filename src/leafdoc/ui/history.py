"""The visitor's history of diagnoses on the web page, kept in their own browser (localStorage), never on the
server: a small thumbnail of each photo, the answer in a few words and the date; exportable as CSV, clearable.

The server makes each entry (`entry`: the thumbnail as a data URL, so the browser needs no copy of the photo) and
hands it to the page's script (`SCRIPT`, in the page's head) through a hidden HTML output (`entry_html`); the
script appends it to the list in localStorage, at most `KEEP` entries, newest first, and draws the list with DOM
calls (no innerHTML: an answer's words are text, never markup). tests/e2e/test_ui_phone.py drives it in Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from leafdoc.core.i18n import N_, gettext, one_of, render
from leafdoc.imaging.photos import thumbnail as photo_thumbnail
from leafdoc.runtime.memory import give_back_after
from leafdoc.ui.carry import CARRIED
from leafdoc.ui.carry import KEY as CARRY_KEY
from leafdoc.ui.inline_js import offline_module
from leafdoc.words.history import COLUMNS, KEEP, KEY, NOT_SURE, SURE, THUMB_PX, not_sure_between
from leafdoc.words.labels import answer_name, pretty_label
from leafdoc.words.percent import percent_words


def thumbnail(path: Path) -> str:
    """A small JPEG of the photo as a data URL; empty when it cannot be read (the entry is kept without one). The
    photo is decoded no larger than the thumbnail needs, as the API decodes it no larger than the model needs, and
    the memory of a big decode is given back: a client that skips the page's own shrinking costs this process no
    more than it costs the API."""
    try:
        small, frame = photo_thumbnail(path.read_bytes(), path.name, THUMB_PX)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=70)
    except Exception:  # a photo the server refused still gets its line in the history
        return ""
    give_back_after(frame.decoded)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def answer_words(answer: dict) -> str:
    """The answer in a few words, in its language; a refusal with no figure (a grower reads a percentage as an
    answer)."""
    lang = answer.get("language") or "en"
    if answer.get("abstained"):
        candidates = answer.get("candidates") or []
        if not candidates:
            return gettext(lang, NOT_SURE)
        said = render(one_of([answer_name(answer, c) for c in candidates]), lang)
        return not_sure_between(lang).format(names=said)
    label = answer_name(answer, answer.get("label") or "?")
    sure = answer.get("confidence")
    if not isinstance(sure, int | float):
        return label
    return gettext(lang, SURE).format(label=label, percent=percent_words(sure, lang))


def entry_html(path: Path, answer: dict, name: str) -> str:
    """The entry as the hidden element the page's script reads it from (an attribute, HTML-escaped JSON)."""
    return f'<div data-entry="{html.escape(json.dumps(entry(path, answer, name)), quote=True)}"></div>'


def entry(path: Path, answer: dict, name: str) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "photo": name,
        "answer": answer_words(answer),
        "label": answer.get("label") or "",
        "caution": (answer["caution"].get("name") or pretty_label(answer["caution"]["label"]))
        if answer.get("caution")
        else "",
        "thumb": thumbnail(path),
    }


EXPORT = N_("Export CSV")
CLEAR = N_("Clear history")
EMPTY = N_("No diagnoses yet on this device.")
KEPT = N_("Kept in this browser only, never on the server; clearing the browser's data clears it too.")
CHECK_FOR = N_("Check for {name}")  # an entry's urgent look-alike
CLEAR_ASK = N_("Clear the history of diagnoses on this device?")

BOX = """
<div id="history-box" data-check-for="{check_for}" data-clear-ask="{clear_ask}">
  <div id="history-tools">
    <button type="button" id="history-export">{export}</button>
    <button type="button" id="history-clear">{clear}</button>
  </div>
  <p id="history-empty" class="small-note">{empty}</p>
  <ol id="history-list"></ol>
  <p class="small-note">{kept}</p>
</div>
"""


def box_html(lang: str = "en") -> str:
    """The history's box in `lang` (set in the visitor's language as the page loads); the words the page's script
    writes itself (an entry's caution, the question before clearing) ride on its data attributes."""
    words = {"export": EXPORT, "clear": CLEAR, "empty": EMPTY, "kept": KEPT, "check_for": CHECK_FOR}
    return BOX.format(
        **{k: html.escape(gettext(lang, w), quote=True) for k, w in words.items()},
        clear_ask=html.escape(gettext(lang, CLEAR_ASK), quote=True),
    )


CSS = """
#history-entry, #page-notes-done { display: none !important; }
#history-tools { display: flex; gap: 0.5em; margin-bottom: 0.5em; }
#history-tools button { padding: 0.35em 0.9em; border-radius: 6px; border: 1px solid #ccc; background: #fff;
                        font-size: 0.95em; font-weight: normal; }
#history-list { list-style: none; padding: 0; margin: 0; }
#history-list li { display: flex; gap: 0.7em; align-items: center; padding: 0.35em 0; border-top: 1px solid #eee; }
#history-list img { width: 56px; height: 56px; object-fit: cover; border-radius: 6px; flex: 0 0 56px; }
#history-list li > div { min-width: 0; overflow-wrap: anywhere; }
#history-list .history-answer { font-weight: 600; }
#history-list .history-caution { color: #b03030; }
#history-list .history-date { color: #666; font-size: 0.85em; }
.dark #history-tools button { background: #2a2d2b; color: #eceeec; border-color: #5a605c; }
.dark #history-list .history-caution { color: #ff9c9c; }
.dark #history-list .history-date { color: #b9bdb9; }
"""

SCRIPT = (
    """
(() => {
  const KEY = "%KEY%", KEEP = %KEEP%;
  const COLUMNS = %COLUMNS%;
  // the store's code the offline page imports (offline/static/history.js), inlined: one copy for both pages
  const store = (() => {
%STORE%
    return { read, add, csvCell };
  })();
  const read = () => store.read(KEY);
  // the box's words in the page's language (ui/history.py box_html), English until it is drawn
  function said(key, english) {
    const box = document.getElementById("history-box");
    return (box && box.dataset[key]) || english;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function render() {
    const list = document.getElementById("history-list");
    if (!list) return;
    const items = read();
    list.replaceChildren(...items.map((it) => {
      const li = el("li", "history-item");
      const img = el("img");
      img.alt = it.photo || "photo";
      if (typeof it.thumb === "string" && it.thumb.startsWith("data:image/jpeg;base64,")) img.src = it.thumb;
      const words = el("div");
      words.append(el("div", "history-answer", it.answer || ""));
      const checkFor = said("checkFor", "Check for {name}");
      if (it.caution) words.append(el("div", "history-caution", checkFor.replace("{name}", () => it.caution)));
      words.append(el("div", "history-date", new Date(it.date).toLocaleString() + " · " + (it.photo || "")));
      li.append(img, words);
      return li;
    }));
    const empty = document.getElementById("history-empty");
    if (empty) empty.style.display = items.length ? "none" : "";
  }
  function exportCsv() {
    const rows = [COLUMNS.join(",")].concat(read().map((it) => COLUMNS.map((c) => store.csvCell(it[c])).join(",")));
    const blob = new Blob([rows.join("\\r\\n") + "\\r\\n"], {type: "text/csv"});
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "leafdoc-history.csv";
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  window.leafdocHistory = {
    add(item) {
      if (!item || typeof item !== "object" || !item.date) return;
      const items = read(), last = items[0];
      // Gradio sends a replaced photo's change twice, so the page diagnoses it twice: one line for both
      const again = last && last.photo === item.photo && last.answer === item.answer &&
        Math.abs(Date.parse(item.date) - Date.parse(last.date)) < 10000;
      // the photo carried into the page in another language (ui/carry.py): its line, in the new language, replaces
      // the one it had in the language left (the same name and thumbnail: a phone names every photo image.jpg)
      let carried = null;
      try { carried = sessionStorage.getItem("%CARRIED%"); sessionStorage.removeItem("%CARRIED%"); } catch (e) {}
      if (carried === item.photo && last && last.photo === item.photo && last.thumb === item.thumb) {
        localStorage.setItem(KEY, JSON.stringify(items.slice(1)));
        store.add(KEY, KEEP, item); // replaced, even by the same words (a lab's labels have no translation)
      } else if (!again) store.add(KEY, KEEP, item);
      render();
    },
    render, read, exportCsv,
    // the photo kept for a reload (ui/carry.py) goes too: a shared computer's next visitor must not see it come back
    clear() { localStorage.removeItem(KEY); try { sessionStorage.removeItem("%KEPT%"); } catch (e) {} render(); },
  };
  // A new answer's entry shows up in the hidden #history-entry (an output of the diagnosis): store it, draw the
  // list, and tell the page an answer arrived. Watched from here rather than run as an event's `js`, which Gradio
  // runs through `new Function` and a Content-Security-Policy without 'unsafe-eval' blocks.
  let seen = null;
  function look() {
    const holder = document.querySelector("#history-entry [data-entry]");
    const raw = holder ? holder.getAttribute("data-entry") : null;
    if (raw && raw !== seen) {
      seen = raw;
      try { window.leafdocHistory.add(JSON.parse(raw)); } catch (e) { /* not an entry: nothing to keep */ }
      setTimeout(() => document.dispatchEvent(new Event("leafdoc:answer")), 50);
    }
    const list = document.getElementById("history-list");
    if (list && !list.dataset.drawn) { list.dataset.drawn = "1"; render(); }
  }
  new MutationObserver(look).observe(document.documentElement, {childList: true, subtree: true, attributes: true});
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target && target.closest("#history-export")) exportCsv();
    const ask = said("clearAsk", "Clear the history of diagnoses on this device?");
    if (target && target.closest("#history-clear") && confirm(ask)) {
      window.leafdocHistory.clear();
    }
  });
})();
""".replace("%KEY%", KEY)
    .replace("%CARRIED%", CARRIED)
    .replace("%KEPT%", CARRY_KEY)
    .replace("%KEEP%", str(KEEP))
    .replace("%COLUMNS%", json.dumps(list(COLUMNS)))
    .replace("%STORE%", offline_module("history.js"))  # read, add, thumbnail, blobUrl, csvCell (formula-safe)
)

HEAD = "<script>" + SCRIPT + "</script>"
