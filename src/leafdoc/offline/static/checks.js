// The server's checks of whether a photo is one the model can read, run in the browser on the same numbers:
// - not a leaf (inference/ood.py): Mahalanobis distances of the network's pooled features and of a colour
//   histogram to the training photos', standardised and weighed;
// - unlike training (inference/field.py): those two, how busy and cluttered the photo's border is, how unsure the
//   model is and the `scene` direction of its features, weighed into one score; a refused photo is a field photo or
//   no leaf at all by the card's `reason` model;
// - other leaves (inference/otherleaves.py, a lab's own model with the card's `other_leaves`): the probability that
//   the leaf is some other crop or condition than the model's own classes, sigmoid(features . weights + bias).
// The fitted numbers come from the model folder (ood.npz and card.json), sent by the server as checks.bin
// (offline/checks.py). OpenCV's 8-bit HSV conversion, area resize, box blur and Canny are copied to the integer, so
// the measures are the server's (tests/unit/test_offline_checks.py runs these in Node against the Python ones).

// ---- checks.bin: "LDCK", a little-endian u32 header length, a JSON header, then the arrays ----------------------

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

let HALF = null; // every float16 bit pattern as its value, made at the first file that holds one

export function readChecks(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "LDCK") throw new Error("checks.bin is not a leafdoc checks file");
  const view = new DataView(buffer);
  const length = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const start = 8 + length;
  const arrays = {};
  for (const [name, a] of Object.entries(header.arrays)) {
    const n = a.shape.reduce((x, y) => x * y, 1);
    const out = new Float32Array(n);
    if (a.dtype === "float16") {
      HALF = HALF || new Float32Array(65536).map((_, i) => halfToFloat(i));
      for (let i = 0; i < n; i++) out[i] = HALF[view.getUint16(start + a.offset + 2 * i, true)];
    } else {
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(start + a.offset + 4 * i, true);
    }
    arrays[name] = { data: out, shape: a.shape };
  }
  return { ...header.card, arrays };
}

// ---- OpenCV's 8-bit RGB -> HSV (hue 0-179, saturation and value 0-255), as cv2.cvtColor does it ----------------

const HSV_SHIFT = 12;
const SDIV = new Int32Array(256).map((_, i) => (i ? Math.round((255 << HSV_SHIFT) / i) : 0));
const HDIV = new Int32Array(256).map((_, i) => (i ? Math.round((180 << HSV_SHIFT) / (6 * i)) : 0));

export function hsv(img) {
  const n = img.w * img.h;
  const out = new Uint8Array(n * 3);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const r = d[3 * i], g = d[3 * i + 1], b = d[3 * i + 2];
    const v = Math.max(r, g, b);
    const diff = v - Math.min(r, g, b);
    const s = (diff * SDIV[v] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
    let h = v === r ? g - b : v === g ? b - r + 2 * diff : r - g + 4 * diff;
    h = (h * HDIV[diff] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
    if (h < 0) h += 180;
    out[3 * i] = h;
    out[3 * i + 1] = s;
    out[3 * i + 2] = v;
  }
  return out;
}

// ood.colour_features: square roots of the normalised hue x saturation (18 x 4) and brightness (8) histograms.
const HUE_BINS = 18, SAT_BINS = 4, VAL_BINS = 8;

export function colourFeatures(img) {
  const c = hsv(img);
  const n = img.w * img.h;
  const hs = new Float64Array(HUE_BINS * SAT_BINS);
  const v = new Float64Array(VAL_BINS);
  for (let i = 0; i < n; i++) {
    hs[Math.floor(c[3 * i] * (HUE_BINS / 180)) * SAT_BINS + Math.floor(c[3 * i + 1] * (SAT_BINS / 256))] += 1;
    v[Math.floor(c[3 * i + 2] * (VAL_BINS / 256))] += 1;
  }
  return Float64Array.from([...hs, ...v], (x) => Math.sqrt(x / Math.max(n, 1)));
}

// ---- field.photo_features: busy and cluttered border, leaf-coloured share, measured at 96 px ------------------

const MEASURE_PX = 96;
const BORDER = 8;
const SMOOTH_STD = 6.0;
const LEAF_HUE = [10, 95], LEAF_MIN_SAT = 80, LEAF_MIN_VAL = 40;

// round half to even, as OpenCV's saturate_cast<uchar>(float) (cvRound)
function roundEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// cv2.resize(..., INTER_AREA) to a smaller size by a factor that is not whole (computeResizeAreaTab, ResizeArea_Invoker)
function areaTable(ssize, dsize) {
  const scale = ssize / dsize;
  const tab = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cell = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push([dx, sx1 - 1, Math.fround((sx1 - fsx1) / cell)]);
    for (let sx = sx1; sx < sx2; sx++) tab.push([dx, sx, Math.fround(1 / cell)]);
    if (fsx2 - sx2 > 1e-3) tab.push([dx, sx2, Math.fround(Math.min(Math.min(fsx2 - sx2, 1), cell) / cell)]);
  }
  return tab;
}

export function resizeArea(img, size) {
  if (img.w === size && img.h === size) return img;
  if (img.w % size === 0 && img.h % size === 0) {
    // a whole factor: the mean of each block (OpenCV's resizeAreaFast, rounded as it rounds)
    const k = img.w / size, q = img.h / size;
    const out = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let dy = 0; dy < q; dy++) for (let dx = 0; dx < k; dx++) s += img.data[((y * q + dy) * img.w + x * k + dx) * 3 + c];
          out[(y * size + x) * 3 + c] = Math.floor((s + (k * q) / 2) / (k * q));
        }
    return { w: size, h: size, data: out };
  }
  const xt = areaTable(img.w, size), yt = areaTable(img.h, size);
  const out = new Uint8Array(size * size * 3);
  const sum = new Float32Array(size * 3);
  const buf = new Float32Array(size * 3);
  let current = 0;
  const flush = (dy) => {
    for (let i = 0; i < size * 3; i++) out[dy * size * 3 + i] = Math.min(255, Math.max(0, roundEven(sum[i])));
    sum.fill(0);
  };
  for (const [dy, sy, beta] of yt) {
    if (dy !== current) {
      flush(current);
      current = dy;
    }
    buf.fill(0);
    const row = sy * img.w * 3;
    for (const [dx, sx, alpha] of xt)
      for (let c = 0; c < 3; c++) buf[dx * 3 + c] = Math.fround(buf[dx * 3 + c] + Math.fround(img.data[row + sx * 3 + c] * alpha));
    for (let i = 0; i < size * 3; i++) sum[i] = Math.fround(sum[i] + Math.fround(beta * buf[i]));
  }
  flush(current);
  return { w: size, h: size, data: out };
}

// cv2.blur with a 5 x 5 box, BORDER_REFLECT_101, on a float image
function reflect101(i, n) {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

function box5(a, w, h) {
  const rows = new Float64Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -2; k <= 2; k++) s += a[y * w + reflect101(x + k, w)];
      rows[y * w + x] = s;
    }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -2; k <= 2; k++) s += rows[reflect101(y + k, h) * w + x];
      out[y * w + x] = s / 25;
    }
  return out;
}

// cv2.Canny(rgb, low, high): 3 x 3 Sobel on each channel (BORDER_REPLICATE), the channel with the largest L1
// magnitude, non-maximum suppression with OpenCV's fixed-point tangents, hysteresis over 8 neighbours.
export function canny(img, low, high) {
  const { w, h, data } = img;
  const px = (x, y, c) => data[(Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3 + c];
  const dx = new Int32Array(w * h), dy = new Int32Array(w * h);
  const mag = new Int32Array((w + 2) * (h + 2)); // a ring of zeros around
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let best = -1;
      for (let c = 0; c < 3; c++) {
        const gx = px(x + 1, y - 1, c) + 2 * px(x + 1, y, c) + px(x + 1, y + 1, c) - px(x - 1, y - 1, c) - 2 * px(x - 1, y, c) - px(x - 1, y + 1, c);
        const gy = px(x - 1, y + 1, c) + 2 * px(x, y + 1, c) + px(x + 1, y + 1, c) - px(x - 1, y - 1, c) - 2 * px(x, y - 1, c) - px(x + 1, y - 1, c);
        const m = Math.abs(gx) + Math.abs(gy);
        if (m > best) {
          best = m;
          dx[y * w + x] = gx;
          dy[y * w + x] = gy;
        }
      }
      mag[(y + 1) * (w + 2) + x + 1] = best;
    }
  const lo = Math.floor(low), hi = Math.floor(high);
  const TG22 = 13573; // tan(22.5 degrees) * 2^15
  const map = new Uint8Array(w * h); // 0: maybe an edge, 1: not one, 2: an edge
  const stack = [];
  const M = (x, y) => mag[(y + 1) * (w + 2) + x + 1];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const m = M(x, y);
      let keep = false;
      if (m > lo) {
        const xs = dx[y * w + x], ys = dy[y * w + x];
        const ax = Math.abs(xs), ay = Math.abs(ys) * 32768;
        const tg22x = ax * TG22;
        if (ay < tg22x) keep = m > M(x - 1, y) && m >= M(x + 1, y);
        else if (ay > tg22x + ax * 65536) keep = m > M(x, y - 1) && m >= M(x, y + 1);
        else {
          const s = (xs < 0) !== (ys < 0) ? -1 : 1;
          keep = m > M(x - s, y - 1) && m > M(x + s, y + 1);
        }
      }
      if (!keep) map[y * w + x] = 1;
      else if (m > hi) {
        map[y * w + x] = 2;
        stack.push(y * w + x);
      }
    }
  while (stack.length) {
    const i = stack.pop();
    const x = i % w, y = (i - x) / w;
    for (let yy = y - 1; yy <= y + 1; yy++)
      for (let xx = x - 1; xx <= x + 1; xx++) {
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        const j = yy * w + xx;
        if (map[j] === 0) {
          map[j] = 2;
          stack.push(j);
        }
      }
  }
  return map.map((v) => (v === 2 ? 1 : 0));
}

export function photoFeatures(square) {
  const x = resizeArea(square, MEASURE_PX);
  const n = MEASURE_PX * MEASURE_PX;
  const grey = new Float32Array(n), sq = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const d = x.data;
    grey[i] = (d[3 * i] * 4899 + d[3 * i + 1] * 9617 + d[3 * i + 2] * 1868 + (1 << 13)) >> 14; // cv2 RGB2GRAY
    sq[i] = grey[i] * grey[i];
  }
  const mean = box5(grey, MEASURE_PX, MEASURE_PX), meanSq = box5(sq, MEASURE_PX, MEASURE_PX);
  const c = hsv(x);
  const edges = canny(x, 50, 150);
  const wide = MEASURE_PX / BORDER;
  let ringN = 0, plainN = 0, edgeN = 0, leafN = 0;
  for (let y = 0; y < MEASURE_PX; y++)
    for (let xx = 0; xx < MEASURE_PX; xx++) {
      const i = y * MEASURE_PX + xx;
      const m = mean[i];
      const smooth = Math.fround(Math.sqrt(Math.max(Math.fround(meanSq[i] - Math.fround(m * m)), 0))) < SMOOTH_STD;
      const hh = c[3 * i], s = c[3 * i + 1], v = c[3 * i + 2];
      const leaf = hh >= LEAF_HUE[0] && hh <= LEAF_HUE[1] && s >= LEAF_MIN_SAT && v >= LEAF_MIN_VAL;
      if (leaf) leafN++;
      const inRing = y < wide || y >= MEASURE_PX - wide || xx < wide || xx >= MEASURE_PX - wide;
      if (!inRing) continue;
      ringN++;
      if (smooth && !leaf) plainN++;
      if (edges[i]) edgeN++;
    }
  return [1 - plainN / ringN, edgeN / ringN, leafN / n];
}

// ---- the scores ------------------------------------------------------------------------------------------------

// ood.OodScorer.components: (log distance - centre) / spread of the features to the nearest class and of the colours
function components(checks, features, square) {
  const A = checks.arrays;
  const D = A.feat_mean.data.length;
  const z = new Float32Array(D);
  for (let i = 0; i < D; i++) z[i] = features[i] - A.feat_mean.data[i];
  const W = A.feat_whiten.data;
  const zw = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    const zi = z[i];
    if (zi === 0) continue;
    const row = i * D;
    for (let j = 0; j < D; j++) zw[j] += zi * W[row + j];
  }
  const means = A.class_means_w.data;
  let nearest = Infinity;
  for (let c = 0; c < means.length / D; c++) {
    let d2 = 0;
    for (let j = 0; j < D; j++) {
      const e = zw[j] - means[c * D + j];
      d2 += e * e;
    }
    nearest = Math.min(nearest, d2);
  }
  const col = colourFeatures(square);
  const H = col.length;
  const cw = A.colour_whiten.data, cm = A.colour_mean.data;
  let colour = 0;
  for (let j = 0; j < H; j++) {
    let s = 0;
    for (let i = 0; i < H; i++) s += (col[i] - cm[i]) * cw[i * H + j];
    colour += s * s;
  }
  const centre = A.centre.data, spread = A.spread.data;
  return [Math.log(Math.max(nearest, 1e-6)), Math.log(Math.max(colour, 1e-6))].map((v, k) => (v - centre[k]) / spread[k]);
}

// field.uncertainty: log of the softmax's entropy over its largest value
function uncertainty(probs) {
  let e = 0;
  for (const p of probs) {
    const q = Math.min(Math.max(p, 1e-12), 1);
    e -= q * Math.log(q);
  }
  return Math.log(e / Math.log(Math.max(probs.length, 2)) + 1e-4);
}

const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);

// The other-leaves check: P(some other leaf) = sigmoid(features . weights + bias); null without the card's section.
export function otherLeafScore(checks, features) {
  const other = checks.other_leaves;
  if (!other) return null;
  const w = checks.arrays.other_leaves_weights.data;
  let z = other.bias;
  for (let i = 0; i < w.length; i++) z += features[i] * w[i];
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

// abstain.leaf_refusal: "not_a_leaf", "unknown_leaf" or null. `oodThreshold` is null where the unlike-training check
// has already read the not-a-leaf score. A photo both checks refuse is a leaf of another kind when its not-a-leaf score
// is below the other-leaves section's no_leaf_from (most of the bank's other leaves score below it), else no leaf.
export function leafRefusal(checks, reading, oodThreshold) {
  const other = checks.other_leaves;
  const otherRefused = other != null && reading.otherLeafScore != null && reading.otherLeafScore > other.threshold;
  if (oodThreshold != null && reading.notALeafScore > oodThreshold) {
    const below = other != null && other.no_leaf_from != null && reading.notALeafScore < other.no_leaf_from;
    return otherRefused && below ? "unknown_leaf" : "not_a_leaf";
  }
  return otherRefused ? "unknown_leaf" : null;
}

// Predictor.field_reading: the not-a-leaf score, the unlike-training score (null without that check) and whether a
// photo it refuses is a field photo (true) or no leaf at all (false), with the measures behind them; and the
// other-leaves score (null without that check).
export function readPhoto(checks, features, probs, square) {
  const comp = components(checks, features, square);
  const reading = {
    notALeafScore: dot(comp, checks.ood.weights),
    fieldScore: null,
    fieldLike: false,
    otherLeafScore: otherLeafScore(checks, features),
    components: comp,
  };
  const field = checks.field;
  if (!field) return reading;
  const photo = photoFeatures(square);
  const c = field.centre, s = field.spread;
  const inputs = [...comp, (photo[0] - c[0]) / s[0], (photo[1] - c[1]) / s[1]];
  if (c.length > 2) inputs.push((uncertainty(probs) - c[2]) / s[2]);
  if (c.length > 3) {
    const scene = dot(Array.from(features), checks.arrays.scene_weights.data) + field.scene_bias;
    inputs.push((scene - c[3]) / s[3]);
  }
  reading.fieldScore = dot(inputs, field.weights);
  reading.fieldLike = field.reason ? dot([...comp, photo[2]], field.reason.weights) + field.reason.bias > 0 : photo[2] >= field.leafy_share;
  reading.photo = photo;
  return reading;
}
