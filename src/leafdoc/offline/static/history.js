// The history of diagnoses the browser keeps (words/history.py): the same store as the web page's (/ui, on the same
// server), so a diagnosis made here with no connection shows in the web page's history and its CSV later. An entry:
// { date, photo, answer (a few words: words.js answerWords), label, caution, thumb (a small JPEG as a data URL) }.
// One copy of the store's code for both pages: the offline page imports it, the web page inlines it (ui/history.py).

export function read(key) {
  try {
    const items = JSON.parse(localStorage.getItem(key) || "[]");
    return Array.isArray(items) ? items : [];
  } catch (e) {
    return [];
  }
}

// Newest first, at most `keep`; a full storage drops the oldest entries rather than the new one.
export function add(key, keep, entry) {
  let kept = [entry, ...read(key)].slice(0, keep);
  while (kept.length) {
    try {
      localStorage.setItem(key, JSON.stringify(kept));
      return;
    } catch (e) {
      kept = kept.slice(0, -1);
    }
  }
}

// The photo as the history's thumbnail: its longer side at most `px`, turned as the photo says, a JPEG data URL.
export async function thumbnail(blob, px) {
  try {
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
    const scale = Math.min(1, px / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.7);
  } catch (e) {
    return ""; // a photo the browser cannot draw still gets its line
  }
}

// A data: URL as a blob: URL (the page's policy shows blob: images, not data:)
export function blobUrl(dataUrl) {
  const [head, body] = dataUrl.split(",", 2);
  if (!head.startsWith("data:image/jpeg;base64") || !body) return null;
  const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
}

// A cell of the history's CSV as text a spreadsheet will not run as a formula: the rules of words/answer_table.py
// spreadsheet_safe (control characters dropped, line breaks and tabs made spaces, an apostrophe before a formula's
// first character at the start, after spaces, and after every ";"), then quoted where CSV needs it.
export function spreadsheetSafe(value) {
  let text = String(value == null ? "" : value)
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "")
    .replace(/[\r\n\t]+/g, " ");
  text = text.replace(/;([\s\x85]*)(?=[=+\-@])/g, (match, spaces) => ";" + spaces + "'");
  return /^[ \u00a0]*[=+\-@]/.test(text) ? "'" + text : text;
}

export function csvCell(value) {
  const safe = spreadsheetSafe(value);
  return /[",\n\r]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
}
