"""The page on a phone (a screen under 640 px wide, 390 px on most). The Diagnose tab: the answer comes right after
the photo and its button, before the examples and tips; the page scrolls the answer to the top of the screen when it
arrives, so that it is the first thing a grower sees; the feedback row and the heat map keep readable sizes. The
admin tabs' tables (model versions, review queue) keep every word whole and scroll sideways at their own width.
The words that send the visitor to another tab say, on a phone, where it is when the row of tabs has no room for it
(`tab_where`).

Pure CSS on the elements' ids (ui/diagnose_tab.py, ui/retrain_tab.py, ui/review_tab.py) and one small script in the
page's head (`HEAD`); tests/e2e/test_ui_phone.py measures the boxes at 390 x 844.
"""

from __future__ import annotations

from leafdoc.ui.feedback_text import REVIEW_COLUMNS
from leafdoc.ui.i18n import said
from leafdoc.ui.text import MODEL_COLUMNS

PHONE_WIDTH = 640  # px: below this the page is laid out for a phone
# Each column's width on a phone, in characters of the tables' (monospace) font: the longest word of its heading and
# of its cells. Gradio gives each column its share of the screen (8 columns in 390 px: 26 to 71 px) and its cells
# break words anywhere ("versi on", "whe n"); with these widths no word breaks, and the table scrolls sideways.
PHONE_COLUMN_CHARS = {
    "model-versions": dict(zip(MODEL_COLUMNS, (7, 10, 15, 8, 8, 12, 12, 10), strict=True)),
    "review-queue": dict(zip(REVIEW_COLUMNS, (10, 18, 4, 13, 5, 10), strict=True)),
}
CELL_PADDING_PX = 17  # a cell's padding (8 px a side) and border

# Gradio lays the tabs in one row and moves those it has no room for under a "⋯" button at the row's right end: at
# 390 px, in English, all but Diagnose and Dataset (in Hindi, Retrain stays), and the Dataset tab's "add photos in the
# Retrain tab" sent a phone's visitor to a tab they could not see. Which tabs go depends on the width and on the
# names' language, so on a phone the words say where to look, not what the screen shows; wider than PHONE_WIDTH, every
# tab has room in every language (tests/e2e/test_ui_phone.py), and the note is not shown.
ON_NARROW = "on-narrow"  # the class of words shown only on a phone's screen (CSS)
OVERFLOW = f'<span class="{ON_NARROW}"> (if it is not among the tabs: under **⋯** at their right)</span>'


def tab_where(key: str, lang: str = "en") -> str:
    """Markdown naming the page's tab `key` (ui/locales: "tab_retrain") as its row of tabs names it, in the page's
    language `lang` (what is in the admin tabs stays English), and, on a phone's screen, where it is when the row has
    no room for it: "the **Retrain** tab (if it is not among the tabs: under **⋯** at their right)"."""
    return f"the **{said(key, lang)}** tab{OVERFLOW}"


def _tables_css() -> str:
    """Every word of the tables whole (Gradio's `word-break: break-word` split them wherever a line ended), and on a
    phone each column its PHONE_COLUMN_CHARS, the table as wide as its columns. Gradio sizes a column by the cells of
    its header table (the headings and a hidden row it measures by), then the rows' cells by them: all are set."""
    whole = ", ".join(f"#{table} .text.wrap" for table in PHONE_COLUMN_CHARS)
    rules = [
        f"{whole} {{ word-break: normal !important; overflow-wrap: break-word !important; }}",
        "@media (max-width: {PHONE_WIDTH}px) {",
    ]
    for table, chars in PHONE_COLUMN_CHARS.items():
        width = f"calc({sum(chars.values())}ch + {CELL_PADDING_PX * len(chars)}px)"
        rules.append(
            f"  #{table} .header-table, #{table} .virtual-row {{ width: {width} !important; "
            f"min-width: {width} !important; }}"
        )
        for i, n in enumerate(chars.values(), start=1):
            px = f"calc({n}ch + {CELL_PADDING_PX}px)"
            rules.append(
                f"  #{table} .header-table tr > :nth-child({i}), #{table} .virtual-row > :nth-child({i}) "
                f"{{ width: {px} !important; min-width: {px} !important; max-width: {px} !important; "
                f"flex: 0 0 {px} !important; }}"
            )
    return "\n".join([*rules, "}"])


CSS = (
    """
#feedback-row { flex-wrap: wrap !important; align-items: center !important; gap: 0.5em !important; }
#feedback-row > #feedback-question { flex: 1 1 9em !important; min-width: 9em !important;
                                     background: transparent !important; padding-left: 0.6em !important; }
#feedback-row > button { flex: 0 0 auto !important; min-width: 6.5em !important; height: auto !important;
                         align-self: center !important; }
#heat-map-note { margin-top: -0.4em !important; }
#feedback-row > button:last-child { margin-right: 0.6em !important; }
#feedback-status { padding: 0 0.6em !important; }
.{ON_NARROW} { display: none; }
@media (max-width: {PHONE_WIDTH}px) {
  .{ON_NARROW} { display: inline; }
  .gradio-container { padding-left: 8px !important; padding-right: 8px !important; }
  #leafdoc-header svg { flex: 0 0 36px; width: 36px; height: 36px; }
  #leafdoc-header h1 { font-size: 1.5em; }
  #leafdoc-header p { font-size: 0.9em; line-height: 1.3; }
  /* the photo side's children join the row, so that the answer side can come between them */
  #diagnose-row { flex-direction: column !important; }
  #photo-side { display: contents !important; }
  #photo-side > * { order: 3; width: 100% !important; }
  /* the crop dropdown (in the .form Gradio wraps it in) right under the photo */
  #photo-side > #leaf-photo, #photo-side > .form:has(> #crop-choice) { order: 1; }
  #photo-side > #diagnose-button { order: 2; }
  #answer-side { order: 2; width: 100% !important; min-width: 0 !important; }
  /* "Was this right?" on its line, then Yes and No side by side, each half the width (at 360 px No fell alone to
     the next line, under the question, with Yes at the right edge above it) */
  #feedback-row > #feedback-question { flex: 1 1 100% !important; }
  #feedback-row > button { flex: 1 1 0 !important; }
  #feedback-row > button:first-of-type { margin-left: 0.6em !important; }
  /* scrolled to when it arrives: a little room above it, so that its border is not cut at a fractional scroll */
  #verdict { scroll-margin-top: 6px; }
  #leaf-photo { height: 260px !important; }
  .block.verdict { min-height: 0 !important; }
  .verdict h2 { font-size: 1.35em !important; }
  #heat-map { max-height: 340px; }
  #top-k .text { font-size: 0.92em; }
}
{TABLES}
""".replace("{TABLES}", _tables_css())
    .replace("{PHONE_WIDTH}", str(PHONE_WIDTH))
    .replace("{ON_NARROW}", ON_NARROW)
)

# In the page's head: when an answer arrives (the history's script sends "leafdoc:answer", ui/history.py), a wider
# screen's answer box is brought into view if it is off the screen; on a phone the answer's top edge goes to the top
# of the screen, and is kept there while the answer finishes drawing (PIN_MS),
# unless the grower scrolls first. A head script rather than an event's `js`, which Gradio runs through `new Function`
# and a Content-Security-Policy without 'unsafe-eval' blocks.
#
# Why pinned, and why without scroll anchoring: on a phone the examples, tips and notes come after the answer on the
# screen but before it in the page's order (#photo-side's children, `order: 3`). Under a short answer (a refusal: no
# bars, no heat map) they are on the screen, so Chromium's scroll anchoring took one of them as its anchor; when the
# answer's box then grew with its message, the browser scrolled on by as much to keep that anchor still, and the
# refusal's top ended 130-160 px above the screen. Scroll anchoring is off while the answer is pinned, and each change
# of the answer's size (or the page's) puts its top back at the top of the screen.
PIN_MS = 3000

HEAD = """<script>
document.addEventListener("leafdoc:answer", () => {
  const box = document.getElementById("verdict");
  if (!box || box.classList.contains("verdict-empty")) return;
  if (window.innerWidth >= {PHONE_WIDTH}) {
    // beside the photo: brought into view only when it is off the screen (an example clicked far down the page left
    // the answer's box above the screen, only its bars and heat map in view)
    const top = box.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 120) box.scrollIntoView({block: "start", behavior: "instant"});
    return;
  }
  const scrollers = [document.documentElement, document.body];
  const pin = () => box.scrollIntoView({block: "start", behavior: "instant"});
  for (const s of scrollers) s.style.overflowAnchor = "none";
  pin();
  const watch = new ResizeObserver(pin);
  watch.observe(box);
  watch.observe(document.body);
  const moves = ["touchstart", "wheel", "keydown"];
  const done = () => {
    watch.disconnect();
    for (const s of scrollers) s.style.overflowAnchor = "";
    for (const m of moves) window.removeEventListener(m, done);
  };
  for (const m of moves) window.addEventListener(m, done, {passive: true});
  setTimeout(done, {PIN_MS});
});
</script>""".replace("{PHONE_WIDTH}", str(PHONE_WIDTH)).replace("{PIN_MS}", str(PIN_MS))
