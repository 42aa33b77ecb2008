"""The page on a phone (a screen under 640 px wide, 390 px on most). The Diagnose tab: the answer comes right after
the photo and its button, before the examples and tips; the page scrolls the answer to the top of the screen when it
arrives, so that it is the first thing a grower sees; the feedback row and the heat map keep readable sizes. The
Retrain tab's model versions table scrolls sideways at its own width.

Pure CSS on the elements' ids (ui/diagnose_tab.py, ui/retrain_tab.py) and one small script in the page's head
(`HEAD`); tests/e2e/test_ui_phone.py measures the boxes at 390 x 844.
"""

from __future__ import annotations

from leafdoc.ui.text import MODEL_COLUMN_SHARES

PHONE_WIDTH = 640  # px: below this the page is laid out for a phone
VERSIONS_TABLE_PX = 720  # the Retrain tab's model versions table on a phone: it scrolls sideways at this width


def _versions_table_css() -> str:
    """The model versions table at VERSIONS_TABLE_PX on a phone. Gradio sizes its columns as shares of the screen's
    width (inline, on the header's cells and each row's), and 8 columns in 390 px broke every word a letter a line;
    each column gets its share of VERSIONS_TABLE_PX instead, and the table scrolls sideways."""
    rules = [
        f"  #model-versions .header-table, #model-versions .virtual-row {{ width: {VERSIONS_TABLE_PX}px !important; "
        f"min-width: {VERSIONS_TABLE_PX}px !important; }}"
    ]
    for i, share in enumerate(MODEL_COLUMN_SHARES, start=1):
        px = round(VERSIONS_TABLE_PX * share / 100)
        rules.append(
            f"  #model-versions .header-table th:nth-child({i}), #model-versions .virtual-row > :nth-child({i}) "
            f"{{ width: {px}px !important; min-width: {px}px !important; flex: 0 0 {px}px !important; }}"
        )
    return "\n".join(rules)


CSS = """
#feedback-row { flex-wrap: wrap !important; align-items: center !important; gap: 0.5em !important; }
#feedback-row > #feedback-question { flex: 1 1 9em !important; min-width: 9em !important;
                                     background: transparent !important; padding-left: 0.6em !important; }
#feedback-row > button { flex: 0 0 auto !important; min-width: 6.5em !important; height: auto !important;
                         align-self: center !important; }
#heat-map-note { margin-top: -0.4em !important; }
@media (max-width: {PHONE_WIDTH}px) {
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
  /* scrolled to when it arrives: a little room above it, so that its border is not cut at a fractional scroll */
  #verdict { scroll-margin-top: 6px; }
  #leaf-photo { height: 260px !important; }
  .block.verdict { min-height: 0 !important; }
  .verdict h3 { font-size: 1.35em !important; }
  #heat-map { max-height: 340px; }
  #top-k .text { font-size: 0.92em; }
{VERSIONS}
}
""".replace("{PHONE_WIDTH}", str(PHONE_WIDTH)).replace("{VERSIONS}", _versions_table_css())

# In the page's head: when an answer arrives (the history's script sends "leafdoc:answer", ui/history.py), on a phone
# the answer's top edge goes to the top of the screen, and is kept there while the answer finishes drawing (PIN_MS),
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
  if (window.innerWidth >= {PHONE_WIDTH}) return;
  const box = document.getElementById("verdict");
  if (!box || box.classList.contains("verdict-empty")) return;
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
