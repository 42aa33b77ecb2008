"""The photo shown, carried into the page in another language: a language link (ui/language.py) reloads the page with
`?lang=`, which lost the photo and its answer, so a grower who switched to read the advice in their own language had
to find the photo again. Now the link keeps the photo in the tab's sessionStorage and names the crop chosen in the
address (`&crop=<its name as shown>&crop_lang=<the language it is shown in>`); the page in the new language puts the
photo back in the photo box once the crop menu is set (`carried_crop`), which diagnoses it again, in the new
language, and its history line replaces the one of the same photo in the language left.

A photo too large for sessionStorage, or a browser without it, goes without: the link works as before.
"""

from __future__ import annotations

from leafdoc.core.i18n import UnknownLanguage, negotiate

KEY = "leafdoc-carry"  # sessionStorage: the photo, while the page reloads in the other language
CARRIED = "leafdoc-carried"  # sessionStorage: the carried photo's name, for the history (ui/history.py)
MAX_BYTES = 3_000_000  # a photo shown is at most 1,024 px (ui/downscale.py): a few hundred kB; a data URL is 4/3 of it
DONE_ID = "page-notes-done"  # set once the page's notes and crop menu are drawn (diagnose_tab.notes_handler)


def carried_crop(request, crops: list[str], choices) -> str:
    """The crop the address carries (`crop`: its name as the menu showed it in `crop_lang`), as the menu's value; ""
    when none, or one the serving model does not have. `choices(crops, lang)` is the menu's (name, value) list."""
    params = getattr(request, "query_params", None) or {}
    shown = (params.get("crop") or "").strip()
    if not shown or not crops:
        return ""
    try:
        lang = negotiate(params.get("crop_lang"), None)
    except UnknownLanguage:
        return ""
    return next((value for name, value in choices(crops, lang) if value and name == shown), "")


def done_html() -> str:
    return '<span data-done="1"></span>'


_SCRIPT = """
(() => {
  const KEY = "%KEY%", CARRIED = "%CARRIED%", MAX = %MAX%, DONE = "#%DONE% [data-done]";
  const photoShown = () => document.querySelector("#leaf-photo img[src]");
  // Leaving for another language: the photo shown kept for the page that opens, the crop named in its address.
  document.addEventListener("click", async (event) => {
    const link = event.target instanceof Element ? event.target.closest("#language-switch a[href]") : null;
    const img = link && photoShown();
    if (!img || !window.sessionStorage) return;
    event.preventDefault();
    const to = new URL(link.href, location.href);
    try {
      const blob = await (await fetch(img.src)).blob();
      if (blob.size <= MAX && blob.type.startsWith("image/")) {
        const data = await new Promise((ok, fail) => {
          const r = new FileReader();
          r.onload = () => ok(r.result);
          r.onerror = fail;
          r.readAsDataURL(blob);
        });
        const name = decodeURIComponent(new URL(img.src, location.href).pathname.split("/").pop() || "photo.jpg");
        sessionStorage.setItem(KEY, JSON.stringify({ name, type: blob.type, data }));
        const crop = document.querySelector("#crop-choice input");
        const here = document.querySelector("#language-switch [aria-current]");
        if (crop && crop.value && here) {
          to.searchParams.set("crop", crop.value);
          to.searchParams.set("crop_lang", here.getAttribute("lang") || "en");
        }
      }
    } catch (e) {
      sessionStorage.removeItem(KEY); // too large for the storage, or not readable: the link as it was
    }
    location.href = to.href;
  }, true);
  // Arrived in the new language with a photo: put back in the photo box once the crop menu is set (the page's notes
  // drawn), which diagnoses it again.
  let raw = null;
  try { raw = window.sessionStorage && sessionStorage.getItem(KEY); } catch (e) { raw = null; }
  if (!raw) return;
  sessionStorage.removeItem(KEY);
  const started = Date.now();
  const put = () => {
    const input = document.querySelector("#leaf-photo input[type=file]");
    if (!input || !document.querySelector(DONE) || !window.DataTransfer) {
      if (Date.now() - started < 30000) setTimeout(put, 200);
      return;
    }
    try {
      const carried = JSON.parse(raw);
      const [, base64] = String(carried.data).split(",", 2);
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const file = new File([bytes], carried.name, { type: carried.type });
      sessionStorage.setItem(CARRIED, carried.name);
      const dt = new DataTransfer();
      dt.items.add(file);
      input.files = dt.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    } catch (e) {
      // not a photo this browser can rebuild: the page as it opens
    }
  };
  put();
})();
"""

HEAD = (
    "<script>"
    + _SCRIPT.replace("%KEY%", KEY)
    .replace("%CARRIED%", CARRIED)
    .replace("%MAX%", str(MAX_BYTES))
    .replace("%DONE%", DONE_ID)
    + "</script>"
)
