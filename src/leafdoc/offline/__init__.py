"""The offline page at /app: a small page (plain JavaScript, no Gradio) that installs on a phone as an app (web
manifest, service worker) and diagnoses with no connection, in the browser, with ONNX Runtime Web on the serving
model's model.onnx. What it runs in the browser and what it cannot: docs/phone.md ("Offline").

ONNX Runtime Web comes from npm (`web/package.json`, `web/package-lock.json`); scripts/install.sh runs `npm ci`
there and copies the three files the page loads into `vendor/` (git-ignored: the .wasm is 14 MB). Without them the
page says so and how to get them (`VENDOR_FILES`, `vendor_missing`).
"""

from leafdoc.offline.routes import APP_PATH, CONTENT_SECURITY_POLICY, VENDOR, VENDOR_FILES, mount_offline

__all__ = ["APP_PATH", "CONTENT_SECURITY_POLICY", "VENDOR", "VENDOR_FILES", "mount_offline"]
