// Feedback given on the offline page ("Was this right?"), kept on the phone until there is a connection, then sent
// to the server as the web page sends it: the photo to POST /v1/predict (at most 1,024 px on its long side, as /ui
// uploads it: ui/downscale.py), then what the grower said to POST /v1/predictions/{id}/feedback, about the server's
// answer to that photo (the page's own decision on all but 1 of 1,154 photos: docs/phone.md). The queue lives in
// IndexedDB (localStorage would not hold the photos) and survives a reload; nothing is sent twice: the prediction's
// id is kept once the photo is sent, so a retry sends only the feedback.

import { shrinkPhoto } from "./shrink.js";

const DB = "leafdoc-offline";
const TIMEOUT_MS = 60_000; // a request the server has not answered by then is tried again later
const STORE = "feedback";

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function openDb() {
  const request = indexedDB.open(DB, 1);
  request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
  return done(request);
}

// One transaction: `work(store)` returns a promise of its result, given once the transaction has committed.
async function transaction(mode, work) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    let result;
    t.oncomplete = () => {
      db.close();
      resolve(result);
    };
    t.onerror = t.onabort = () => {
      db.close();
      reject(t.error || new Error("the browser's storage refused it"));
    };
    work(t.objectStore(STORE)).then(
      (value) => {
        result = value;
      },
      (e) => {
        try {
          t.abort();
        } catch (ignored) {
          // already finished
        }
        reject(e);
      },
    );
  });
}

// The queue in the browser's IndexedDB: what flush() reads and writes (a test gives it another).
export const browserQueue = {
  add: (entry) => transaction("readwrite", (s) => done(s.add(entry))),
  all: () => transaction("readonly", (s) => done(s.getAll())),
  put: (entry) => transaction("readwrite", (s) => done(s.put(entry))),
  remove: (id) => transaction("readwrite", (s) => done(s.delete(id))),
  count: () => transaction("readonly", (s) => done(s.count())),
};

// What to tell the server about ITS answer to the photo, from what the grower said about the page's.
// said: { correct (true for "yes"), label (what it is, when the grower said so), answered (the page's label, null
// where it refused) }; server: POST /v1/predict's answer. null: nothing the grower said applies to the server's answer
// (a bare "no" about an answer the server did not give); the photo is still in the server's records.
export function feedbackFor(said, server) {
  const serverLabel = server.abstained ? null : server.label;
  const truth = said.correct ? said.answered : said.label;
  if (truth) return serverLabel === truth ? { correct: true, label: null } : { correct: false, label: truth };
  return serverLabel !== null && serverLabel === said.answered ? { correct: false, label: null } : null;
}

// The photo as /ui uploads it (shrink.js), or as it is where that would not make it smaller.
export async function shrink(file, longSide, quality) {
  try {
    return (await shrinkPhoto(file, longSide, quality)) || file;
  } catch (e) {
    return file;
  }
}

// A response read: its JSON body if it went through; else whether to try again later (no answer, the server busy,
// limiting or at fault) or never (the server refused this photo or this label: sending it again would not help).
async function judged(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    // not JSON (a proxy's page): the status says enough
  }
  if (response.ok && body) return { ok: true, body };
  const message = (body && body.message) || `HTTP ${response.status}`;
  const again = response.status === 429 || response.status === 408 || response.status >= 500;
  const wait = Number(response.headers.get("Retry-After"));
  return { ok: false, again, error: message, retryAfter: Number.isFinite(wait) && wait > 0 ? wait : null };
}

const timeout = () => (typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(TIMEOUT_MS) : undefined);

// One entry: the photo first (unless an earlier try sent it), then the feedback. Throws where no answer came.
async function sendOne(queue, item, base, send) {
  if (!item.answer) {
    const form = new FormData();
    form.append("file", item.photo, item.name);
    const params = new URLSearchParams({ lang: item.lang });
    if (item.crop) params.set("crop", item.crop);
    const predicted = await judged(await send(new URL(`v1/predict?${params}`, base), { method: "POST", body: form, signal: timeout() }));
    if (!predicted.ok) return predicted;
    const a = predicted.body;
    item.answer = { prediction_id: a.prediction_id, label: a.label, abstained: a.abstained };
    await queue.put(item); // a retry sends the feedback only
  }
  const body = feedbackFor(item.said, item.answer);
  if (!body) return { ok: true, feedback: null, answer: item.answer };
  const url = new URL(`v1/predictions/${encodeURIComponent(item.answer.prediction_id)}/feedback`, base);
  const sent = await judged(
    await send(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: timeout() }),
  );
  return sent.ok ? { ok: true, feedback: body, answer: item.answer } : { ...sent, answer: item.answer };
}

// Send what waits, oldest first. Stops at the first entry that cannot go now (no connection, the server busy or
// limiting: `stopped`, with the seconds the server asked to wait), to try again later; an entry the server refuses
// is taken off the queue with its error. Returns what came of each entry taken off: [{ id, ok, feedback, error }].
export async function flush(queue, base, send = fetch) {
  const results = [];
  for (const item of await queue.all()) {
    let outcome;
    try {
      outcome = await sendOne(queue, item, base, send);
    } catch (e) {
      return { results, stopped: String(e.message || e), retryAfter: null };
    }
    if (!outcome.ok && outcome.again) return { results, stopped: outcome.error, retryAfter: outcome.retryAfter };
    await queue.remove(item.id);
    results.push({ id: item.id, ...outcome });
  }
  return { results, stopped: null, retryAfter: null };
}
