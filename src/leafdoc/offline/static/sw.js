// The offline page's service worker: keeps the page and ONNX Runtime Web in the browser's cache and answers from it
// (the serving model too, which the page keeps), so that the page opens and diagnoses with no connection after one
// visit. The model's description (model.json) is asked of the server first (a new serving version is then
// downloaded and kept by the page), else read from the cache.
const CACHE = "leafdoc-offline-__BUILD__"; // the server writes in a hash of the page's files: a change reinstalls
const SHELL = [
  "./",
  "app.js",
  "prepare.js",
  "checks.js",
  "words.js",
  "heatmap.js",
  "history.js",
  "feedback.js",
  "shrink.js",
  "app.css",
  "manifest.webmanifest",
  "icon-192.png",
  "icon-512.png",
  "ort/ort.wasm.min.mjs",
  "ort/ort-wasm-simd-threaded.mjs",
  "ort/ort-wasm-simd-threaded.wasm",
];

// The model, its checks and its description are kept by the page as it downloads them (app.js fetchKept: with the
// download's progress said, and not inside this worker's install, which a browser stops after about five minutes:
// a first visit over a slow connection never ended), in a cache of their own that a new version of the page keeps.
const MODELS = "leafdoc-offline-models";
const DESCRIPTION_WAIT_MS = 5000; // a connection that answers nothing ("lie-fi") must not hold the page up

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE && name !== MODELS) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith(new URL("./", location.href).pathname)) return;
  if (url.pathname.endsWith("/model.json")) {
    // the server's description first (a new serving version), else the one kept, if the server is slow to answer
    event.respondWith(
      (async () => {
        const network = fetch(event.request, { cache: "no-store" }).catch(() => null);
        const first = await Promise.race([network, new Promise((ok) => setTimeout(() => ok("slow"), DESCRIPTION_WAIT_MS))]);
        if (first && first !== "slow" && first.ok) return first;
        const kept = await (await caches.open(MODELS)).match("model.json");
        if (kept) return kept;
        const late = first === "slow" ? await network : first; // nothing kept: the server's, however late
        return late || Response.error();
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      const kept = await caches.match(event.request, { ignoreSearch: true }); // the page's files, the model's
      if (kept) return kept;
      return fetch(event.request);
    })(),
  );
});
