"""The photo shown, carried into the page in another language: a language link (ui/language.py) reloads the page with
`?lang=`, which lost the photo and its answer, so a grower who switched to read the advice in their own language had
to find the photo again. Now the link keeps the photo in the tab's sessionStorage and names the crop chosen in the
address (`&crop=<its name as shown>&crop_lang=<the language it is shown in>`); the page in the new language puts the
photo back in the photo box once the crop menu is set (`carried_crop`), which diagnoses it again, in the new
language, and its history line replaces the one of the same photo in the language left.

The same keeps a photo whose answer has not come yet across a reload: over a poor connection, Gradio reloads the
page once the connection it lost comes back, and the photo sent had to be chosen again (the slow-network review of
session 72). A photo is kept from the moment it is sent (as /ui uploads it: at most 1,024 px, ui/downscale.py) until
its answer arrives (the history's "leafdoc:answer"); a page that opens with one kept puts it back and answers it.

A photo too large for sessionStorage, or a browser without it, goes without: the page works as before.
"""

from __future__ import annotations

from leafdoc.core.i18n import UnknownLanguage, negotiate

KEY = "leafdoc-carry"  # sessionStorage: the photo, while the page reloads (in another language, or after a drop)
CARRIED = "leafdoc-carried"  # sessionStorage: the carried photo's name, for the history (ui/history.py)
MAX_BYTES = 3_000_000  # a photo shown is at most 1,024 px (ui/downscale.py): a few hundred kB; a data URL is 4/3 of it
KEEP_SECONDS = 600  # a photo kept longer than this (a tab left open, its next visitor) is not put back
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
  const KEY = "%KEY%", CARRIED = "%CARRIED%", MAX = %MAX%, DONE = "#%DONE% [data-done]", KEEP_MS = %KEEP_MS%;
  const photoShown = () => document.querySelector("#leaf-photo img[src]");
  const asDataUrl = (blob) => new Promise((ok, fail) => {
    const r = new FileReader();
    r.onload = () => ok(r.result);
    r.onerror = fail;
    r.readAsDataURL(blob);
  });
  // relabel: the photo's history line is to be said again in the new language (a language link), not added
  async function keep(blob, name, relabel = false) {
    if (blob.size > MAX || !blob.type.startsWith("image/")) return false;
    try {
      const at = Date.now();
      sessionStorage.setItem(KEY, JSON.stringify({ name, type: blob.type, data: await asDataUrl(blob), relabel, at }));
      return true;
    } catch (e) {
      sessionStorage.removeItem(KEY); // the storage full: not kept
      return false;
    }
  }
  // A photo sent: kept until its answer arrives. This listener comes after ui/downscale.py's (the page's head puts
  // this script after it), which stops a chosen photo's first `change` and sends the shrunk one: that is the one seen.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#leaf-photo")) return;
    if (!input.files || !input.files[0] || !window.sessionStorage) return;
    keep(input.files[0], input.files[0].name);
  }, true);
  const forget = () => {
    try { sessionStorage.removeItem(KEY); } catch (e) {}
  };
  // Forgotten once the server has said something of it: an answer or a refusal (the history's "leafdoc:answer"), an
  // error (a photo it cannot read would be sent again at every reload), or the photo box emptied (its answer box back
  // to "your diagnosis appears here"). Told by the answer box's words and kind changing.
  document.addEventListener("leafdoc:answer", forget);
  let said = null;
  new MutationObserver(() => {
    const box = document.getElementById("verdict");
    if (!box) return;
    const kind = [...box.classList].find((c) => c.startsWith("verdict-") && c !== "verdict-") || "";
    // the words are read only where they matter (every mutation of the page comes here): its words only, as
    // Gradio's status tracker inside the box counts "queue: 1/1 | 0.1s" while a photo waits
    const watched = kind === "verdict-error" || kind === "verdict-empty";
    const now = watched ? kind + "|" + (box.querySelector("[data-testid=markdown]") || box).textContent : kind;
    if (said !== null && now !== said && watched) forget();
    said = now;
  }).observe(document.documentElement, {
    childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["class"],
  });
  // Leaving for another language: the photo shown kept for the page that opens, the crop named in its address.
  document.addEventListener("click", async (event) => {
    const link = event.target instanceof Element ? event.target.closest("#language-switch a[href]") : null;
    const img = link && photoShown();
    if (!img || !window.sessionStorage) return;
    event.preventDefault();
    const to = new URL(link.href, location.href);
    try {
      const blob = await (await fetch(img.src)).blob();
      const name = decodeURIComponent(new URL(img.src, location.href).pathname.split("/").pop() || "photo.jpg");
      const crop = document.querySelector("#crop-choice input");
      const here = document.querySelector("#language-switch [aria-current]");
      if ((await keep(blob, name, true)) && crop && crop.value && here) {
        to.searchParams.set("crop", crop.value);
        to.searchParams.set("crop_lang", here.getAttribute("lang") || "en");
      }
    } catch (e) {
      // not readable: the link as it was
    }
    location.href = to.href;
  }, true);
  // Opened with a photo kept (from a language link, or sent and not answered before a reload): put back in the photo
  // box once the crop menu is set (the page's notes drawn), which diagnoses it.
  let raw = null, kept = null;
  try {
    raw = window.sessionStorage && sessionStorage.getItem(KEY);
    kept = raw && JSON.parse(raw);
  } catch (e) {
    kept = null;
  }
  // A crop in the address is a language link's, for the photo it carries: a link made to preset the crop (sent to a
  // grower) opens the page without it.
  const address = new URL(location.href);
  const withoutCrop = () => {
    address.searchParams.delete("crop");
    address.searchParams.delete("crop_lang");
    return address.href;
  };
  if ((address.searchParams.has("crop") || address.searchParams.has("crop_lang")) && !(kept && kept.relabel)) {
    location.replace(withoutCrop());
    return;
  }
  if (!kept) return;
  sessionStorage.removeItem(KEY);
  if (!(Date.now() - kept.at < KEEP_MS)) return; // kept long ago (the tab left open, another visitor): not sent
  const started = Date.now();
  const put = () => {
    const input = document.querySelector("#leaf-photo input[type=file]");
    if (!input || !document.querySelector(DONE) || !window.DataTransfer) {
      if (Date.now() - started < 30000) setTimeout(put, 200);
      return;
    }
    try {
      // the address as the grower would keep it: without the crop it carried
      if (kept.relabel) history.replaceState(history.state, "", withoutCrop());
      const [, base64] = String(kept.data).split(",", 2);
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const file = new File([bytes], kept.name, { type: kept.type });
      if (kept.relabel) sessionStorage.setItem(CARRIED, kept.name);
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
    .replace("%KEEP_MS%", str(KEEP_SECONDS * 1000))
    + "</script>"
)
