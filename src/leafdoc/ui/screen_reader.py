"""The answer, said to a screen reader and given the keyboard's focus when it arrives.

Gradio's Markdown block that shows the verdict is no live region, and the photo box a keyboard chose the photo from
goes away once the photo is in, so its focus fell to the page's body: a blind grower heard nothing, and a keyboard
started over from the top of the page (the accessibility review of session 72). This script, in the page's head,
watches the verdict's box: when it changes to an answer, a refusal or an error, its headline and first line (the
error's hint too) go into a polite live region of its own, and, if the focus was lost (on the body), the box takes
it (without scrolling: ui/phone.py scrolls). Its words are the box's own, so they are in the page's language. And a
choice picked in "It is actually…" with the keyboard hands the focus to "✗ No" (a refusal's "Send"), which sends it;
the lines that say what became of a click (feedback, a job, a promotion, the figures) are polite live regions too.
"""

from __future__ import annotations

CSS = """
#leafdoc-announce { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
                    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
#verdict:focus { outline: 3px solid var(--primary-700); outline-offset: 2px; }
"""

HEAD = """<script>
(() => {
  let said = "", timer = null;
  const region = () => {
    let r = document.getElementById("leafdoc-announce");
    if (!r && document.body) {
      r = document.createElement("div");
      r.id = "leafdoc-announce";
      r.setAttribute("role", "status");
      r.setAttribute("aria-live", "polite");
      document.body.append(r);
    }
    return r;
  };
  function summary(box) {
    const parts = [box.querySelector("h2")];
    const lines = [...box.querySelectorAll("p")].filter((p) => !p.closest("details, blockquote"));
    parts.push(...lines.slice(0, box.classList.contains("verdict-error") ? 2 : 1));
    return parts.filter(Boolean).map((e) => e.textContent.trim()).filter(Boolean).join(". ").slice(0, 400);
  }
  function look() {
    const box = document.getElementById("verdict");
    if (!box || box.classList.contains("verdict-empty") || box.querySelector(".pending, .eta-bar")) return;
    const words = summary(box);
    if (!words || words === said) return;
    said = words;
    const r = region();
    if (r) { r.textContent = ""; setTimeout(() => { r.textContent = words; }, 100); }
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost) { box.setAttribute("tabindex", "-1"); box.focus({preventScroll: true}); }
  }
  // the lines that say what became of a click (feedback sent, a dataset shown, a job's state, a promotion): read out
  // when they change, as Gradio's Markdown blocks are not
  const STATUS = ["feedback-status", "dataset-summary", "retrain-status", "job-status", "review-status",
                  "monitor-summary"];
  function mark() {
    for (const id of STATUS) {
      const el = document.getElementById(id);
      if (el && !el.hasAttribute("aria-live")) {
        el.setAttribute("role", "status");
        el.setAttribute("aria-live", "polite");
      }
    }
  }
  new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(() => { mark(); look(); }, 300); })
    .observe(document.documentElement, {childList: true, subtree: true, characterData: true, attributes: true,
                                        attributeFilter: ["class"]});
  // "It is actually…" comes after "✗ No" in the keyboard's order, and says to pick, then ✗ No: once a choice is
  // picked with Enter (Gradio then drops the focus on the page's body), the focus goes to ✗ No, the next step
  document.addEventListener("keydown", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (event.key !== "Enter" || !target || !target.closest("#feedback-actual")) return;
    setTimeout(() => {
      // under an answer ✗ No; under a refusal (no Yes or No) its Send
      const next = ["feedback-down", "feedback-send"].map((id) => document.getElementById(id))
        .find((b) => b && b.offsetParent !== null);
      const here = document.activeElement;
      if (next && (!here || here === document.body || here.closest("#feedback-actual"))) next.focus();
    }, 150);
  }, true);
})();
</script>"""
