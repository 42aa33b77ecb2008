// The offline page: the serving model in ONNX Runtime Web (WebAssembly), a photo prepared as the server prepares it
// (prepare.js), the server's checks (checks.js) and decision, said in the grower's language (words.js, with the texts
// model.json carries). `window.leafdoc` is what the browser test reads.
import { displaySquare, prepare, unsupported } from "./prepare.js";
import { leafRefusal, readChecks, readPhoto } from "./checks.js";
import {
  answerWords,
  caution,
  cropOf,
  fill,
  framedNote,
  namesCrop,
  preferred,
  refusal,
  shareWords,
  title,
} from "./words.js";
import { classMap, overlayUrl } from "./heatmap.js";
import * as history from "./history.js";
import * as feedback from "./feedback.js";

const statusLine = document.getElementById("status");
const input = document.getElementById("photo");
const list = document.getElementById("answers");
const picker = document.getElementById("lang");
const cropPicker = document.getElementById("crop");
const earlierList = document.getElementById("earlier");
const queueLine = document.getElementById("queue");
const knowsLine = document.getElementById("knows");
const limitsBox = document.getElementById("limits");
const state = {
  ready: false, offline: false, error: null, results: [], model: null, checks: null, diagnose: null, lang: "en",
  // feedback waiting for a connection (feedback.js), and what came of each sent: what the browser test reads
  queue: { waiting: 0, sentEarlier: 0, failedEarlier: [] }, sent: [],
};
window.leafdoc = state;
const LANG_KEY = "leafdoc-offline-lang";

function say(text, missing = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("missing", missing);
}

// The service worker (sw.js) keeps the page's own files; installed beside the model's download, never waited for
// before it (its install over a slow connection takes minutes).
async function keepOffline() {
  if (!("serviceWorker" in navigator)) return false;
  await navigator.serviceWorker.register("sw.js", { scope: "./" });
  await navigator.serviceWorker.ready;
  return true;
}

const MODELS = "leafdoc-offline-models"; // the cache sw.js answers the model from (and keeps across page versions)
const STALL_MS = 30000; // a download that receives nothing for this long has stopped: said, not waited on for ever
// in the page's language's way (4,2 in French and Spanish)
const MB = (bytes) => (bytes / 1e6).toLocaleString(state.lang || "en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function modelCache() {
  try {
    return "caches" in self ? await caches.open(MODELS) : null;
  } catch (e) {
    return null; // storage refused (private mode): downloaded on each visit
  }
}

// A file of the model (the ONNX model, its checks): the one kept, else downloaded once, the progress said over the
// whole download (`before` of `total` bytes already had), then kept for the visits with no connection. A download
// that stops (a dropped connection, a stall) keeps what it got beside the file (`.part`, with the file's ETag), and
// the next try asks only for the rest (Range, If-Range: the server sends the whole again if its version changed).
// The server's ETag is the file's SHA-256 ("sha256-" and its first 32 hex digits): what is kept is checked against it
// and `size` (the bytes model.json gives), so a part that does not join up is dropped, never run.
const PART = ".part";

function joined(parts, length) {
  const data = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return data;
}

// Whether `data` is the file the server tagged `etag` (a tag of another form, or no way to hash here: not checked).
async function isTagged(data, etag) {
  const hex = /^"sha256-([0-9a-f]{32})"$/.exec(etag || "");
  if (!hex || !(self.crypto && crypto.subtle)) return true;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("") === hex[1];
}

async function fetchKept(cache, url, before, total, size) {
  const kept = cache && (await cache.match(url));
  if (kept) return kept.arrayBuffer();
  const part = cache && (await cache.match(url + PART));
  const had = part ? new Uint8Array(await part.arrayBuffer()) : null;
  const tag = part && part.headers.get("ETag");
  const drop = () => cache && cache.delete(url + PART).catch(() => {});
  const type = "application/octet-stream";
  if (had && had.length === size && (await isTagged(had, tag))) return keep(cache, url, had, type); // all of it, cut at the end
  const resume = Boolean(had && tag && had.length && had.length < size);
  if (had && !resume) await drop(); // a part that cannot be gone on from (too long, no tag)
  const response = await fetch(url, { cache: "no-store", headers: resume ? { Range: `bytes=${had.length}-`, "If-Range": tag } : {} });
  const goesOn = resume && response.status === 206 && (response.headers.get("Content-Range") || "").startsWith(`bytes ${had.length}-`);
  if (resume && !(goesOn || response.status === 200)) await drop(); // 416, or another part: the next try starts over
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  if (response.status === 206 && !goesOn) throw new Error(`${url}: the server sent another part than the one asked for`);
  const etag = response.headers.get("ETag");
  const reader = response.body.getReader();
  const parts = goesOn ? [had] : [];
  let got = goesOn ? had.length : 0;
  try {
    for (;;) {
      let timer;
      const stalled = new Promise((ok) => (timer = setTimeout(() => ok(null), STALL_MS)));
      const next = await Promise.race([reader.read(), stalled]);
      clearTimeout(timer); // one timer at a time, not one left running for every piece received
      if (next === null) {
        reader.cancel().catch(() => {});
        throw new Error(fill(texts().page.stalled, { s: STALL_MS / 1000 }));
      }
      if (next.done) break;
      parts.push(next.value);
      got += next.value.length;
      say(fill(texts().page.downloading, { got: MB(before + got), total: MB(total) }));
    }
  } catch (e) {
    if (cache && etag && got) await cache.put(url + PART, new Response(joined(parts, got), { headers: { ETag: etag } })).catch(() => {});
    throw e;
  }
  const data = joined(parts, got);
  if ((size && got !== size) || !(await isTagged(data, etag))) {
    await drop();
    throw new Error(`${url}: the download came out damaged (${MB(got)} MB, not the server's file)`);
  }
  return keep(cache, url, data, response.headers.get("Content-Type") || type);
}

async function keep(cache, url, data, type) {
  if (cache) {
    await cache.put(url, new Response(data, { headers: { "Content-Type": type } })).catch(() => {});
    await cache.delete(url + PART).catch(() => {});
  }
  return data.buffer;
}

// Once the model and its checks are kept: their description too (what the page reads with no connection), and no
// other version's files.
async function keepDescription(cache) {
  if (!cache) return;
  const wanted = [state.model.model, state.model.checks].filter(Boolean).map((f) => new URL(f, location.href).href);
  await cache.put("model.json", new Response(JSON.stringify(state.model), { headers: { "Content-Type": "application/json" } }));
  for (const request of await cache.keys()) {
    if (!request.url.endsWith("/model.json") && !wanted.includes(request.url)) await cache.delete(request);
  }
}

async function loadRuntime() {
  try {
    return await import("./ort/ort.wasm.min.mjs");
  } catch (e) {
    const status = await fetch("status.json").then((r) => r.json()).catch(() => null);
    throw new Error((status && status.note) || `ONNX Runtime Web could not be loaded (${e.message}).`);
  }
}

const texts = () => state.model.texts[state.lang];
// abstain.hesitation: the 2-3 most likely labels, as many as cover 90% of the probability.
function hesitation(order, probs) {
  const picked = [];
  let total = 0;
  for (const i of order.slice(0, 3)) {
    picked.push(i);
    total += probs[i];
    if (picked.length >= 2 && total >= 0.9) break;
  }
  return picked;
}

// abstain.decide: the photo's problems, then (with the checks) whether it is a leaf like the training photos or a
// field photo of a crop learnt in the field (its own threshold), then (a lab's own model with the other-leaves
// check) whether it is a leaf of another crop or condition, then the model's doubt; with the crop the grower
// names (crop first, inference/cropfirst.py), among that crop's labels only. What it decides, not words: those are
// said in the page's language when shown (words.js).
// cropfirst.crop_mismatch: the crop named all but ruled out (under its share of the probability) and its best label
// another condition than the one the model sees unaided: not renormalised into a sure answer.
const conditionOf = (label) => {
  const at = label.indexOf("___");
  return (at < 0 ? label : label.slice(at + 3)).replace(/_/g, " ").replace(/\s+/g, " ").trim().toLowerCase();
};
function mismatched(share, probs, among, seen) {
  const labels = state.model.labels;
  if (!(share < state.model.crop_mismatch_share)) return false;
  const best = among.reduce((b, i) => (probs[i] > probs[b] ? i : b), among[0]);
  return conditionOf(labels[best]) !== conditionOf(labels[seen]);
}

function decide(probs, problems, reading, crop) {
  const labels = state.model.labels;
  const best = (values, among) => [...among].sort((a, b) => values[b] - values[a] || a - b);
  const all = Array.from(probs.keys());
  const among = crop ? all.filter((i) => namesCrop(labels[i]) && cropOf(labels[i]) === crop) : all;
  // the probabilities an answer shows: with a crop of several labels, renormalised over them (cropfirst.within_crop)
  const mass = among.reduce((s, i) => s + probs[i], 0); // the crop's share of the model's probability
  let shown = probs;
  if (crop && among.length > 1) {
    shown = all.map((i) => (!among.includes(i) ? 0 : mass > 0 && Number.isFinite(mass) ? probs[i] / mass : 1 / among.length));
  }
  const k = Math.max(3, state.model.urgent_rule.top);
  const top = best(shown, among).slice(0, k).map((i) => ({ label: labels[i], probability: shown[i] }));
  const refuse = (reason, more = {}) => ({ top, abstained: true, reason, candidates: [], problems, crop, ...more });
  if (problems.length) return refuse("poor_photo");
  let threshold = state.model.min_confidence;
  const field = state.checks && state.checks.field;
  const order = best(probs, all);
  if (reading && field && reading.fieldScore > field.threshold) {
    if (!reading.fieldLike) return refuse("not_a_leaf");
    const fieldCrop = crop || cropOf(labels[order[0]]); // the grower's word, not the model's guess, when given
    if (!field.learnt || !field.learnt.crops.includes(fieldCrop)) return refuse("unlike_training", { crop: fieldCrop });
    threshold = field.learnt.min_confidence; // a field photo of a crop learnt in the field
  }
  // with the unlike-training check, the not-a-leaf score spoke above; the other-leaves check still does
  const refusedLeaf = reading && leafRefusal(state.checks, reading, field ? null : state.checks.ood.threshold);
  if (refusedLeaf) return refuse(refusedLeaf);
  if (crop && among.length === 1) {
    // a crop known by one label: that label only when the model names it unaided
    if (order[0] === among[0] && probs[among[0]] >= threshold) return { top, abstained: false, reason: null, candidates: [], problems: [], crop };
    return refuse("unsure", { single: true });
  }
  if (crop && mismatched(mass, probs, among, order[0])) return refuse("unsure", { seen: labels[order[0]] });
  const shownOrder = best(shown, all);
  if (!(shown[shownOrder[0]] >= threshold)) { // NaN too: a model that computes nothing answers nothing
    const candidates = hesitation(shownOrder, shown).map((i) => labels[i]);
    // Without the checks: sure enough for the server, not for this page, which cannot check the photo.
    const strict = !state.checks && shown[shownOrder[0]] >= state.model.server_min_confidence;
    return refuse("unsure", { candidates, strict });
  }
  return { top, abstained: false, reason: null, candidates: [], problems: [], crop };
}

function render(item) {
  const t = texts();
  const { r } = item;
  // a button of this answer pressed (the heat map, "No", "Send") redraws it: its focus is kept, not dropped to the body
  const hadFocus = item.li.contains(document.activeElement);
  const onPhoto = hadFocus && document.activeElement.classList.contains("photo-toggle");
  item.li.replaceChildren();
  const img = document.createElement("img");
  img.alt = "";
  img.src = item.showHeat ? item.heatUrl : item.url;
  let photo = img; // the photo, or the button that shows its heat map and back (a keyboard's too, not a tap only)
  const text = document.createElement("div");
  const verdict = document.createElement("p");
  const detail = document.createElement("p");
  detail.className = "detail";
  const warn = document.createElement("p"); // an urgent look-alike's warning, above the advice
  if (item.error) {
    verdict.className = "verdict unsure";
    verdict.textContent = fill(t.page.cannot_read, { file: item.file });
    verdict.title = item.error; // the browser's reason, in its words, for whoever helps the grower
  } else if (r.abstained) {
    verdict.className = "verdict unsure";
    verdict.textContent = r.reason === "poor_photo" ? t.page.poor_photo : t.page.not_sure; // take another, not doubt
    detail.textContent = refusal(t, r);
  } else {
    const label = r.top[0].label;
    const entry = t.advice[label];
    verdict.className = `verdict ${entry && entry.healthy ? "healthy" : "sick"}`;
    verdict.textContent = `${title(t, label)} (${fill(t.page.sure, { percent: shareWords(r.top[0].probability) })})`;
    const warning = caution(t, state.model.urgent_rule, label, r.top);
    if (warning) {
      warn.className = "caution";
      warn.textContent = `⚠ ${warning.message}`;
    }
    detail.textContent = entry ? entry.summary : "";
    if (r.overlay) {
      // tap the photo: where the model looked, and back
      photo = button("", async () => {
        item.heatUrl = item.heatUrl || (await r.overlay());
        item.showHeat = !item.showHeat;
        render(item);
      });
      photo.className = "photo-toggle";
      photo.setAttribute("aria-label", t.page.heat_map);
      photo.setAttribute("aria-pressed", item.showHeat ? "true" : "false");
      photo.title = t.page.heat_map;
      img.classList.add("tappable");
      photo.append(img);
      const hint = document.createElement("small");
      hint.className = "hint";
      hint.textContent = ` ${t.page.heat_map}`;
      detail.append(hint);
    }
    if (entry && entry.unreviewed) {
      const note = document.createElement("small");
      note.className = "unreviewed";
      note.textContent = ` ⚠ ${t.page.unreviewed}`;
      detail.append(note);
    }
  }
  text.append(verdict, ...(warn.textContent ? [warn] : []), detail);
  const framed = !item.error && framedNote(t, r);
  if (framed) {
    const note = document.createElement("p");
    note.className = "detail framed";
    note.textContent = framed;
    text.append(note);
  }
  if (!item.error) {
    const time = document.createElement("p");
    time.className = "detail";
    time.textContent = fill(t.page.on_device, { file: item.file, ms: Math.round(r.ms) });
    text.append(time);
    if (!(r.abstained && r.reason === "poor_photo")) text.append(feedbackRow(item)); // a poor photo: take another
  }
  item.li.append(photo, text);
  if (hadFocus) {
    const said = item.li.querySelector(".feedback .said");
    if (said && !onPhoto) announce(said.textContent); // what became of "was this right?"
    const next = onPhoto
      ? item.li.querySelector(".photo-toggle")
      : item.li.querySelector(".feedback select") || item.li.querySelector(".feedback button:not(:disabled)");
    if (!next) {
      text.tabIndex = -1;
      text.focus({ preventScroll: true });
    } else next.focus({ preventScroll: true });
  }
}

// Said to a screen reader: the answers' headlines once they are shown, what became of "was this right?" (a polite
// live region of its own, out of sight; #status says only how the page itself is)
function announce(words) {
  const region = document.getElementById("said");
  if (!region || !words) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = words;
  }, 100);
}

function button(words, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = words;
  b.addEventListener("click", onClick);
  return b;
}

// "Was this right?" under an answer (Yes / No, then what it is if the grower knows); under a refusal, what it is.
// Once said: what became of it (kept for a connection, sent, not sent).
function feedbackRow(item) {
  const t = texts();
  const row = document.createElement("div");
  row.className = "feedback";
  const fb = item.fb || { stage: item.r.abstained ? "choosing" : "asking" };
  if (fb.stage === "asking") {
    const question = document.createElement("span");
    question.className = "question";
    question.textContent = t.page.was_right;
    row.append(
      question,
      button(t.page.yes, () => give(item, { correct: true, label: null })),
      button(t.page.no, () => {
        item.fb = { stage: "choosing" };
        render(item);
      }),
    );
  } else if (fb.stage === "choosing") {
    const select = document.createElement("select");
    select.setAttribute("aria-label", t.page.what_is_it);
    const none = document.createElement("option");
    none.value = "";
    none.textContent = t.page.crop_unknown;
    const question = document.createElement("span");
    question.className = "question";
    question.textContent = t.page.what_is_it;
    const groups = new Map();
    const option = (label) => {
      const o = document.createElement("option");
      o.value = label;
      o.textContent = title(t, label);
      return o;
    };
    for (const label of state.model.labels.filter(namesCrop)) {
      const crop = cropOf(label);
      if (!groups.has(crop)) groups.set(crop, []);
      groups.get(crop).push(label);
    }
    select.append(
      none,
      ...[...groups].map(([crop, labels]) => {
        const group = document.createElement("optgroup");
        group.label = t.crops[crop] || crop;
        group.append(...labels.map(option));
        return group;
      }),
      // the labels that name no crop: each on its own, not under a "crop" of its own name
      ...state.model.labels.filter((label) => !namesCrop(label)).map(option),
    );
    const send = button(t.page.send, () => give(item, { correct: false, label: select.value || null }));
    send.disabled = item.r.abstained; // a refusal: only what it is says anything
    select.addEventListener("change", () => {
      send.disabled = item.r.abstained && !select.value;
    });
    row.append(question, select, send);
  } else {
    const said = document.createElement("p");
    said.className = fb.stage === "sent" ? "detail said" : "detail said pending";
    said.textContent = feedbackWords(fb, item.r.abstained);
    row.append(said);
  }
  return row;
}

function feedbackWords(fb, refused) {
  const t = texts().page;
  if (fb.stage === "queued") return t.queued;
  if (fb.stage === "not_kept") return fb.full ? fill(t.queue_full, { n: fb.full }) : fill(t.not_kept, { error: fb.error });
  if (fb.stage === "error") return fill(t.not_sent, { error: fb.error });
  if (!fb.feedback) return t.sent_other; // a bare "no" about an answer the server did not give
  if (fb.said.correct) return t.thanks_right;
  // under a refusal there was no answer to be wrong: what the leaf is, said
  if (refused && fb.said.label) return fill(t.thanks_told, { label: title(texts(), fb.said.label) });
  const actually = fb.said.label ? fill(t.actually, { label: title(texts(), fb.said.label) }) : "";
  return fill(t.thanks_wrong, { said: actually });
}

// What the grower said, kept on the phone with the photo (as /ui would upload it) until it can be sent.
async function give(item, said) {
  const keep = state.model.feedback;
  said.answered = item.r.abstained ? null : item.r.top[0].label;
  try {
    const waiting = await feedback.browserQueue.count();
    if (waiting >= keep.keep) {
      item.fb = { stage: "not_kept", full: waiting };
    } else {
      const photo = await feedback.shrink(item.photo, keep.long_side, keep.quality);
      const entry = { photo, name: photo.name, crop: item.r.crop, lang: state.lang, said, date: new Date().toISOString() };
      item.fb = { stage: "queued", said, id: await feedback.browserQueue.add(entry) };
    }
  } catch (e) {
    item.fb = { stage: "not_kept", error: String(e.message || e) };
  }
  render(item);
  sendWaiting();
}

// What came of an entry sent: said under its answer if it is on the page, else counted in the line at the top.
function settle(result) {
  state.sent.push(result);
  const item = (state.shown || []).find((it) => it.fb && it.fb.id === result.id);
  if (!item) {
    if (result.ok) state.queue.sentEarlier += 1;
    else state.queue.failedEarlier.push(result.error);
    return;
  }
  item.fb = result.ok ? { ...item.fb, stage: "sent", feedback: result.feedback } : { ...item.fb, stage: "error", error: result.error };
  render(item);
}

function showQueue() {
  const t = texts().page;
  const q = state.queue;
  const parts = [
    ...(q.waiting ? [fill(t.waiting, { n: q.waiting })] : []),
    ...(q.sentEarlier ? [fill(t.sent_earlier, { n: q.sentEarlier })] : []),
    ...q.failedEarlier.map((error) => fill(t.not_sent, { error })),
  ];
  queueLine.textContent = parts.join(" ");
  queueLine.hidden = !parts.length;
}

// Send what waits (at the start, when the browser is back online, after each answer given); where it cannot go now,
// again in a minute (or when the server says). One sending at a time; asked during one, another round after it.
let sending = null;
let again = false;
let retry = null;
function sendWaiting() {
  if (sending) {
    again = true;
    return sending;
  }
  sending = (async () => {
    do {
      again = false;
      let out;
      try {
        // one tab sends at a time (another open tab would send the same entries): the Web Locks API, where there is one
        const go = () => feedback.flush(feedback.browserQueue, new URL("../", location.href));
        out = await (navigator.locks ? navigator.locks.request("leafdoc-feedback", go) : go());
      } catch (e) {
        out = { results: [], stopped: String(e.message || e), retryAfter: null }; // the storage itself failed
      }
      for (const result of out.results) settle(result);
      clearTimeout(retry);
      if (out.stopped) retry = setTimeout(sendWaiting, (out.retryAfter || 60) * 1000);
      try {
        state.queue.waiting = await feedback.browserQueue.count();
      } catch (e) {
        state.queue.waiting = 0;
      }
      showQueue();
    } while (again);
  })().finally(() => {
    sending = null;
  });
  return sending;
}

// What an answer says in the page's language: a refusal's words, or an answer's warning of an urgent look-alike.
function said(r) {
  if (r.abstained) return { message: refusal(texts(), r), caution: null };
  return { message: null, caution: caution(texts(), state.model.urgent_rule, r.top[0].label, r.top) };
}

// The diagnoses made on this phone before this visit (the history the web page shows too), newest first.
function showEarlier() {
  const items = state.earlier || [];
  document.getElementById("earlier-box").hidden = !items.length;
  earlierList.replaceChildren(
    ...items.map((it) => {
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.alt = String(it.photo || "");
      const url = typeof it.thumb === "string" && it.thumb ? history.blobUrl(it.thumb) : null;
      if (url) img.src = url;
      const words = document.createElement("div");
      const answer = document.createElement("p");
      answer.className = "verdict";
      answer.textContent = String(it.answer || "");
      const when = document.createElement("p");
      when.className = "detail";
      when.textContent = `${new Date(it.date).toLocaleString(state.lang)} · ${it.photo || ""}`;
      words.append(answer, when);
      li.append(img, words);
      return li;
    }),
  );
}

// What the model knows (its first sentence bold) and, folded, what it cannot do: as the web page says them.
function showKnows(t) {
  const [first, ...rest] = t.knows || [];
  const bold = document.createElement("strong");
  bold.textContent = first || "";
  knowsLine.replaceChildren(bold, rest.length ? ` ${rest.join(" ")}` : "");
  knowsLine.hidden = !first;
  const limits = t.limits || [];
  limitsBox.querySelector("summary").textContent = t.limits_title;
  limitsBox.querySelector("div").replaceChildren(
    ...limits.map((text) => {
      const p = document.createElement("p");
      p.textContent = text;
      return p;
    }),
  );
  limitsBox.hidden = !limits.length;
}

// The page's own lines in the chosen language, and every answer shown said again in it.
function speak() {
  const t = texts();
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-text]")) el.textContent = t.page[el.dataset.text];
  picker.setAttribute("aria-label", t.page.language);
  const chosen = cropPicker.value;
  cropPicker.replaceChildren(
    ...[["", t.page.crop_unknown], ...Object.entries(t.crops)].map(([value, name]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = name;
      return option;
    }),
  );
  cropPicker.value = chosen;
  // a model whose labels name no crop (a lab's "late blight", "healthy"): no crop to pick, no picker (its label is
  // display: flex in app.css, which the `hidden` attribute would not override)
  const noCrops = !Object.keys(t.crops).length;
  cropPicker.closest("label").style.display = noCrops ? "none" : "";
  if (noCrops) cropPicker.value = "";
  showKnows(t);
  if (state.ready) {
    const offline = fill(t.page.ready_offline, { n: state.model.labels.length, version: state.model.version });
    say(state.offline ? offline : t.page.ready_online);
  }
  for (const item of state.shown || []) render(item);
  showEarlier();
  showQueue();
  for (const result of state.results) if (!result.error) Object.assign(result, said(result));
}

function chooseLanguage() {
  const available = Object.keys(state.model.texts);
  picker.replaceChildren(
    ...available.map((code) => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = state.model.texts[code].name;
      return option;
    }),
  );
  let kept = null;
  try {
    kept = localStorage.getItem(LANG_KEY);
  } catch (e) {
    // storage refused (private mode): the browser's languages decide
  }
  // the address's ?lang= first (a link sent in the grower's language, as the web page takes it), then the last choice
  // made on this phone, then the phone's languages
  const asked = new URLSearchParams(location.search).get("lang");
  state.lang = available.includes(asked)
    ? asked
    : available.includes(kept)
      ? kept
      : preferred(available, navigator.languages || [navigator.language]);
  picker.value = state.lang;
  picker.hidden = false;
  picker.addEventListener("change", () => {
    state.lang = picker.value;
    try {
      localStorage.setItem(LANG_KEY, state.lang);
    } catch (e) {
      // not kept: the choice holds while the page is open
    }
    speak();
  });
}

async function start() {
  const runtime = loadRuntime();
  runtime.catch(() => {}); // its error is met below, once the page speaks the grower's language
  const worker = keepOffline().catch(() => false);
  // the words first, while the runtime loads: the page is in English only until model.json is read
  state.model = await (await fetch("model.json")).json();
  chooseLanguage();
  state.earlier = history.read(state.model.history.key);
  showEarlier();
  speak();
  const ort = await runtime;
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.proxy = false;
  state.threads = ort.env.wasm.numThreads;
  const why = unsupported(state.model.input);
  if (why) throw new Error(`The serving model cannot run on this page: ${why}. Use the full page (/ui) with a connection.`);
  const cache = await modelCache();
  const total = (state.model.model_bytes || 0) + (state.model.checks_bytes || 0);
  const bytes = await fetchKept(cache, state.model.model, 0, total, state.model.model_bytes);
  if (state.model.checks) {
    state.checks = readChecks(await fetchKept(cache, state.model.checks, bytes.byteLength, total, state.model.checks_bytes));
  } else document.getElementById("checks-note").hidden = false;
  await keepDescription(cache).catch(() => {});
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const size = state.model.input.size;
  const inputName = session.inputNames[0];
  const hasCam = session.outputNames.includes("cam"); // the heat map's output (older exports lack it)

  state.diagnose = async (blob, crop = cropPicker.value || null) => {
    const t0 = performance.now();
    const photo = await prepare(blob, state.model.input);
    const prepared = performance.now();
    const x = new ort.Tensor("float32", Float32Array.from(photo.square.data), [1, size, size, 3]);
    const wanted = ["probabilities", ...(state.checks ? ["features"] : []), ...(hasCam ? ["cam"] : [])];
    const out = await session.run({ [inputName]: x }, wanted);
    const probs = Array.from(out.probabilities.data);
    const ran = performance.now();
    const reading = state.checks && !photo.problems.length ? readPhoto(state.checks, out.features.data, probs, photo.square) : null;
    const done = performance.now();
    const decision = decide(probs, photo.problems, reading, crop);
    const scores = reading && {
      not_a_leaf: reading.notALeafScore, field: reading.fieldScore, field_like: reading.fieldLike, other_leaf: reading.otherLeafScore,
    };
    // the heat map of the answer's label (explain.explain_bytes: the top one, among the crop's labels if given)
    let heat = null;
    if (hasCam && !decision.abstained) {
      const [, h, w, classes] = out.cam.dims;
      heat = classMap(out.cam.data, h, w, classes, state.model.labels.indexOf(decision.top[0].label));
    }
    return {
      ...decision, ...said(decision), probabilities: probs, scores,
      ms: done - t0, modelMs: ran - prepared, checksMs: done - ran, framed: photo.framed, light: photo.light,
      heatmap: heat && Array.from({ length: heat.h }, (_, y) => Array.from(heat.map.slice(y * heat.w, (y + 1) * heat.w))),
      overlay: heat && (async () => overlayUrl(await displaySquare(blob, state.model.input, state.model.heat_map_px), heat)),
    };
  };
  // offline once the page's own files are kept too (the worker installed): said now if it is, else when it is
  state.offline = Boolean(cache) && (await Promise.race([worker, sleep(10000).then(() => false)]));
  if (!state.offline && cache) {
    worker.then((kept) => {
      state.offline = kept;
      if (kept) speak();
    });
  }
  input.disabled = false;
  state.ready = true;
  speak();
  window.addEventListener("online", sendWaiting);
  sendWaiting();
}

input.addEventListener("change", async () => {
  state.shown = state.shown || [];
  const done = [];
  const files = Array.from(input.files);
  input.disabled = true; // one batch at a time: a slow phone takes seconds a photo
  for (const file of files) {
    const item = { file: file.name, photo: file, url: URL.createObjectURL(file), li: document.createElement("li") };
    // said before the work, and drawn: the page then holds still for the seconds a phone's CPU takes
    say(fill(texts().page.diagnosing, { file: file.name }));
    await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));
    try {
      item.r = await state.diagnose(file);
      const warned = item.r.caution;
      const keep = state.model.history;
      history.add(keep.key, keep.keep, {
        date: new Date().toISOString(),
        photo: file.name,
        answer: answerWords(texts(), item.r),
        label: item.r.abstained ? "" : item.r.top[0].label,
        caution: warned ? title(texts(), warned.label) : "",
        thumb: await history.thumbnail(file, keep.thumb_px),
      });
      // the result last, once it is in the history too: `results` is what a diagnosis has finished with
      const { overlay, ...kept } = item.r; // what the test reads: no functions
      state.results.push({ file: file.name, ...kept });
    } catch (e) {
      item.error = String(e.message || e);
      state.results.push({ file: file.name, error: item.error });
    }
    state.shown.push(item);
    render(item);
    list.prepend(item.li);
    done.push(item);
  }
  input.value = "";
  input.disabled = false;
  speak(); // the status line as it was: ready
  announce(done.map((item) => item.li.querySelector(".verdict").textContent).join(". "));
});

start().catch((e) => {
  state.error = String(e.message || e);
  // a download that stopped: said in the grower's language when the words are in, with a way to try again
  const t = state.model && texts();
  say(t ? fill(t.page.download_failed, { error: state.error }) : state.error, true);
  if (t) {
    const again = button(t.page.retry, () => location.reload());
    again.id = "retry";
    statusLine.append(" ", again);
  }
});
