"""The page's photo downscaling, in the visitor's browser: a photo chosen or dropped in the Diagnose tab that is
larger than 1024 px on its long side is turned by its EXIF orientation (createImageBitmap, "from-image"), drawn
at 1024 px and uploaded as a JPEG of quality 0.9, as the desktop app does with upload_size.shrink_for_upload
(whose docstring says why that size keeps everything the model and the quality checks need). A phone photo then
costs a few hundred KB of upload instead of several MB, and the server a 1 MP decode. A photo already small, one
the browser cannot decode, or a browser without createImageBitmap/DataTransfer sends the file as it is; an HEIC
photo the browser cannot decode (Chromium, Firefox) is given its MIME type first, which those browsers leave
empty and without which Gradio drops the file without a word.

How: a capture-phase listener on the document sees the file input's `change` (and a `drop` on the photo box)
before Gradio's own handler, stops it, puts the smaller file into the same input and sends `change` again.
"""

from __future__ import annotations

from leafdoc.imaging.upload_size import JPEG_QUALITY, LONG_SIDE
from leafdoc.ui.inline_js import offline_module

_SCRIPT = """
(() => {
  const LONG_SIDE = %(long_side)d, QUALITY = %(quality)s, BOX = "#leaf-photo";
  %(shrink_photo)s
  function typed(file) {
    // Chromium and Firefox cannot decode HEIC (iPhones' photos) and give it no type, so Gradio would drop it
    // silently; with its type it is uploaded as it is and the server reads it.
    if (file.type || !/\\.(heic|heif)$/i.test(file.name)) return file;
    return new File([file], file.name, {type: "image/heic", lastModified: file.lastModified});
  }
  async function send(input, file) {
    let small = null;
    try { small = await shrinkPhoto(file, LONG_SIDE, QUALITY); } catch (e) { small = null; }
    const dt = new DataTransfer();
    dt.items.add(small || typed(file));
    input.files = dt.files;
    input.dataset.leafdocReady = "1";
    input.dispatchEvent(new Event("change", {bubbles: true}));
  }
  function photoInput(node) {
    const box = node && node.closest && node.closest(BOX);
    return box ? box.querySelector("input[type=file]") : null;
  }
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest(BOX)) return;
    if (input.dataset.leafdocReady === "1") { delete input.dataset.leafdocReady; return; }
    if (!input.files || !input.files[0] || !window.DataTransfer) return;
    event.stopImmediatePropagation();
    send(input, input.files[0]);
  }, true);
  document.addEventListener("drop", (event) => {
    const input = photoInput(event.target);
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (!input || !file || !window.DataTransfer) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    send(input, file);
  }, true);
})();
"""

HEAD = (
    "<script>"
    + _SCRIPT % {"long_side": LONG_SIDE, "quality": JPEG_QUALITY / 100, "shrink_photo": offline_module("shrink.js")}
    + "</script>"
)
