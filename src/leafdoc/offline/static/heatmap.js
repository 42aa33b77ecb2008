// Where the model looked (inference/explain.py): the model's `cam` output is the class activation map of every label
// at the last feature map's cells; the answer's label's map, ReLU'd and scaled to 0..1, upsampled to the photo
// (bilinear) and coloured with the blue-cyan-yellow-red ramp over it, as the server's heat map is drawn.
const ALPHA = 0.45; // explain.OVERLAY_ALPHA

// explain.class_activation_map: `cam` (h * w * classes, row-major) -> the class's map in 0..1, and its peak
export function classMap(cam, h, w, classes, k) {
  const map = new Float32Array(h * w);
  let peak = 0;
  for (let i = 0; i < h * w; i++) {
    map[i] = Math.max(cam[i * classes + k], 0);
    peak = Math.max(peak, map[i]);
  }
  if (peak > 0) for (let i = 0; i < map.length; i++) map[i] /= peak;
  return { map, h, w, scale: peak };
}

// explain.jet: 0..1 -> RGB
function jet(x) {
  const v = Math.min(Math.max(x, 0), 1);
  return [3, 2, 1].map((c) => Math.round(Math.min(Math.max(1.5 - Math.abs(4 * v - c), 0), 1) * 255));
}

// The photo (the model's square, RGB) with the map upsampled (bilinear, cell centres aligned) and blended over it: RGBA.
export function overlay(square, heat) {
  const { w, h, data } = square;
  const out = new Uint8ClampedArray(w * h * 4);
  const at = (y, x) => heat.map[Math.min(heat.h - 1, Math.max(0, y)) * heat.w + Math.min(heat.w - 1, Math.max(0, x))];
  for (let y = 0; y < h; y++) {
    const fy = ((y + 0.5) * heat.h) / h - 0.5;
    const y0 = Math.floor(fy), dy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = ((x + 0.5) * heat.w) / w - 0.5;
      const x0 = Math.floor(fx), dx = fx - x0;
      const v = (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x0 + 1)) + dy * ((1 - dx) * at(y0 + 1, x0) + dx * at(y0 + 1, x0 + 1));
      const colour = jet(v);
      for (let c = 0; c < 3; c++) out[(y * w + x) * 4 + c] = (1 - ALPHA) * data[(y * w + x) * 3 + c] + ALPHA * colour[c] + 0.5;
      out[(y * w + x) * 4 + 3] = 255;
    }
  }
  return out;
}

// The overlay as a blob: URL (the page's policy allows blob: images, not data:)
export async function overlayUrl(square, heat) {
  const canvas = document.createElement("canvas");
  canvas.width = square.w;
  canvas.height = square.h;
  canvas.getContext("2d").putImageData(new ImageData(overlay(square, heat), square.w, square.h), 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  return URL.createObjectURL(blob);
}
