"""What a test reads of a page's colours: every text shown, with its contrast ratio to the colour behind it (WCAG 2's
formula) and whether it counts as large text. The web page's (tests/e2e/test_ui_phone.py) and the offline page's
(tests/e2e/test_offline_page.py) words are held to 4.5:1, 3:1 where large, in light and dark mode."""

# A function, not an expression: Playwright evaluates expressions with eval, which the offline page's CSP forbids.
CONTRASTS = r"""() => {
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) return c;
    }
    return [255, 255, 255];
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement, text = node.textContent.trim();
    if (!text || !el) continue;
    const st = getComputedStyle(el), r = el.getBoundingClientRect();
    if (st.visibility === "hidden" || st.display === "none" || !r.width || !r.height || +st.opacity < 0.5) continue;
    const [a, b] = [lum(rgb(st.color)), lum(behind(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    out.push({ text: text.slice(0, 40), ratio: Math.round(ratio * 100) / 100, large });
  }
  return out;
}"""


def faint(measured: list[dict]) -> list[dict]:
    """The texts under WCAG's AA minimum: 4.5:1, or 3:1 for large text."""
    return [m for m in measured if m["ratio"] < (3 if m["large"] else 4.5)]
