// The offline page's service worker: keeps the page, ONNX Runtime Web and the serving model in the browser's cache,
// so that the page opens and diagnoses with no connection after one visit. The model's description (model.json) is
// asked of the server first (a new serving version is then fetched and kept), else read from the cache.
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

// Keep the model a description names, its checks and the description, and let go of any other version's files.
async function keepModel(cache, response) {
  const description = await response.clone().json();
  const wanted = [description.model, description.checks].filter(Boolean).map((f) => new URL(f, location.href).href);
  for (const url of wanted) if (!(await cache.match(url))) await cache.add(url);
  await cache.put("model.json", response);
  for (const request of await cache.keys()) {
    const versioned = request.url.endsWith("/model.onnx") || request.url.endsWith("/checks.bin");
    if (versioned && !wanted.includes(request.url)) await cache.delete(request);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await keepModel(cache, await fetch("model.json", { cache: "no-store" }));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith(new URL("./", location.href).pathname)) return;
  if (url.pathname.endsWith("/model.json")) {
    event.respondWith(
      (async () => {
        const cache = await caches.open(CACHE);
        try {
          const fresh = await fetch(event.request, { cache: "no-store" });
          if (fresh.ok) {
            await keepModel(cache, fresh.clone());
            return fresh;
          }
        } catch (e) {
          // no connection: the description kept at the last visit
        }
        return (await cache.match("model.json")) || Response.error();
      })(),
    );
    return;
  }
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const kept = await cache.match(event.request, { ignoreSearch: true });
      if (kept) return kept;
      return fetch(event.request);
    })(),
  );
});
