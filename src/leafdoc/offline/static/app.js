// The offline page: the serving model in ONNX Runtime Web (WebAssembly), a photo prepared as the server prepares it
// (prepare.js), the answer with the checks that can run here. `window.leafdoc` is what the browser test reads.
import { prepare, unsupported } from "./prepare.js";
import { readChecks, readPhoto } from "./checks.js";

const statusLine = document.getElementById("status");
const input = document.getElementById("photo");
const list = document.getElementById("answers");
const state = { ready: false, offline: false, error: null, results: [], model: null, checks: null, diagnose: null };
window.leafdoc = state;

function say(text, missing = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("missing", missing);
}

async function keepOffline() {
  if (!("serviceWorker" in navigator)) return false;
  await navigator.serviceWorker.register("sw.js", { scope: "./" });
  await navigator.serviceWorker.ready;
  return true;
}

async function loadRuntime() {
  try {
    return await import("./ort/ort.wasm.min.mjs");
  } catch (e) {
    const status = await fetch("status.json").then((r) => r.json()).catch(() => null);
    throw new Error((status && status.note) || `ONNX Runtime Web could not be loaded (${e.message}).`);
  }
}

function pretty(label) {
  return label.split("___").map((p) => p.replaceAll("_", " ").trim()).filter(Boolean).join(" — ");
}

function title(label) {
  const entry = state.model.advice[label];
  return entry ? entry.title : pretty(label);
}

function couldBe(labels) {
  const names = labels.map(title);
  if (names.length === 1) return `It could be ${names[0]}.`;
  return `It could be ${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}.`;
}

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

const cropOf = (label) => label.split("___")[0];

// abstain.decide, without crop first: the photo's problems, then (with the checks) whether it is a leaf like the
// training photos or a field photo of a crop learnt in the field (its own threshold), then the model's doubt.
function decide(probs, problems, reading) {
  const labels = state.model.labels;
  const words = state.model.messages;
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
  const top = order.slice(0, 3).map((i) => ({ label: labels[i], probability: probs[i] }));
  const advice = "Take another photo of a single leaf, in daylight, filling most of the frame.";
  if (problems.length) {
    const what = problems.map((p) => p.message).join("; ");
    return { top, abstained: true, reason: "poor_photo", message: `Not a usable photo: ${what}.` };
  }
  let threshold = state.model.min_confidence;
  const field = state.checks && state.checks.field;
  if (reading && field && reading.fieldScore > field.threshold) {
    if (!reading.fieldLike) return { top, abstained: true, reason: "not_a_leaf", message: words.not_a_leaf };
    const crop = cropOf(labels[order[0]]);
    if (!field.learnt || !field.learnt.crops.includes(crop)) {
      const message = (field.learnt && words.lab_only[crop]) || words.unlike_training;
      return { top, abstained: true, reason: "unlike_training", message };
    }
    threshold = field.learnt.min_confidence; // a field photo of a crop learnt in the field
  } else if (reading && !field && reading.notALeafScore > state.checks.ood.threshold) {
    return { top, abstained: true, reason: "not_a_leaf", message: words.not_a_leaf };
  }
  if (probs[order[0]] < threshold) {
    const names = hesitation(order, probs).map((i) => labels[i]);
    // Without the checks: sure enough for the server, not for this page, which cannot check the photo.
    const offline =
      !state.checks && probs[order[0]] >= state.model.server_min_confidence
        ? " Here, with no connection, leafdoc answers only when it is very sure, as it cannot check that the photo" +
          " is like the ones it learnt from: send it with a connection for a full answer."
        : "";
    return { top, abstained: true, reason: "unsure", message: `Not sure which disease this is. ${couldBe(names)} ${advice}${offline}` };
  }
  return { top, abstained: false, reason: null, message: null };
}

function show(file, r) {
  const li = document.createElement("li");
  const img = document.createElement("img");
  img.alt = "";
  img.src = URL.createObjectURL(file);
  const text = document.createElement("div");
  const verdict = document.createElement("p");
  const detail = document.createElement("p");
  detail.className = "detail";
  if (r.abstained) {
    verdict.className = "verdict unsure";
    verdict.textContent = "Not sure";
    detail.textContent = r.message;
  } else {
    const label = r.top[0].label;
    const entry = state.model.advice[label];
    verdict.className = `verdict ${entry && entry.healthy ? "healthy" : "sick"}`;
    verdict.textContent = `${title(label)} (${Math.round(r.top[0].probability * 100)}% sure)`;
    detail.textContent = entry ? entry.summary : "";
  }
  const time = document.createElement("p");
  time.className = "detail";
  time.textContent = `${file.name} · ${Math.round(r.ms)} ms on this device`;
  text.append(verdict, detail, time);
  li.append(img, text);
  list.prepend(li);
}

async function start() {
  const [ort, offline] = await Promise.all([loadRuntime(), keepOffline().catch(() => false)]);
  state.offline = offline;
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.proxy = false;
  state.threads = ort.env.wasm.numThreads;
  state.model = await (await fetch("model.json")).json();
  const why = unsupported(state.model.input);
  if (why) throw new Error(`The serving model cannot run on this page: ${why}. Use the full page (/ui) with a connection.`);
  const bytes = await (await fetch(state.model.model)).arrayBuffer();
  if (state.model.checks) state.checks = readChecks(await (await fetch(state.model.checks)).arrayBuffer());
  else document.getElementById("checks-note").hidden = false;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const size = state.model.input.size;
  const inputName = session.inputNames[0];

  state.diagnose = async (blob) => {
    const t0 = performance.now();
    const photo = await prepare(blob, state.model.input);
    const prepared = performance.now();
    const x = new ort.Tensor("float32", Float32Array.from(photo.square.data), [1, size, size, 3]);
    const out = await session.run({ [inputName]: x }, state.checks ? ["probabilities", "features"] : ["probabilities"]);
    const probs = Array.from(out.probabilities.data);
    const ran = performance.now();
    const reading = state.checks && !photo.problems.length ? readPhoto(state.checks, out.features.data, probs, photo.square) : null;
    const done = performance.now();
    const decision = decide(probs, photo.problems, reading);
    const scores = reading && { not_a_leaf: reading.notALeafScore, field: reading.fieldScore, field_like: reading.fieldLike };
    return {
      ...decision, probabilities: probs, scores, ms: done - t0, modelMs: ran - prepared, checksMs: done - ran,
      problems: photo.problems.map((p) => p.code), framed: photo.framed, light: photo.light,
    };
  };
  input.disabled = false;
  state.ready = true;
  say(
    offline
      ? `Ready, also with no connection: ${state.model.labels.length} conditions of leaves (model version ${state.model.version}).`
      : "Ready while this page stays open (this browser cannot keep it for offline use).",
  );
}

input.addEventListener("change", async () => {
  for (const file of Array.from(input.files)) {
    try {
      const r = await state.diagnose(file);
      state.results.push({ file: file.name, ...r });
      show(file, r);
    } catch (e) {
      state.results.push({ file: file.name, error: String(e.message || e) });
      say(`${file.name}: this photo cannot be read here (${e.message || e}).`, true);
    }
  }
  input.value = "";
});

start().catch((e) => {
  state.error = String(e.message || e);
  say(state.error, true);
});
