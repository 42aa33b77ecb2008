// A photo as the model sees it, in the browser: the steps of src/leafdoc/imaging/photos.py (decode no larger than needed,
// framing `leaf`, resize the shorter side with Pillow's antialiased bilinear filter, centre crop) and imaging/leafcut.py
// (the `light-range` white balance), and the photo checks of imaging/quality.py. Pillow's resampling is copied
// to the integer (its fixed-point coefficients and rounding), so the square matches the server's wherever the
// browser decodes the same pixels; OpenCV's Lab conversion is the CIE formula (its 8-bit a and b can differ by one).

const PRECISION_BITS = 22; // Pillow's libImaging/Resample.c for 8-bit images
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

const FILTERS = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, f: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

// An image: {w, h, data: Uint8Array of w*h*3 RGB}.
export function image(w, h, data) {
  return { w, h, data: data || new Uint8Array(w * h * 3) };
}

function coefficients(inSize, in0, in1, outSize, filter) {
  const scale = Math.fround(in1 - in0) / outSize; // Pillow: (double)(in1 - in0), a difference of two C floats
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      pre[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? pre[x] / ww : pre[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v) {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

// Pillow's Image.resize((ow, oh), filter, box=[x0, y0, x1, y1]) on an RGB image, reducing_gap None.
export function resize(img, ow, oh, filterName = "bilinear", box = null) {
  const filter = FILTERS[filterName];
  box = (box || [0, 0, img.w, img.h]).map(Math.fround); // Pillow's C side takes the box as single-precision floats
  if (ow === img.w && oh === img.h && box[0] === 0 && box[1] === 0 && box[2] === img.w && box[3] === img.h) {
    return image(img.w, img.h, img.data.slice());
  }
  const needH = ow !== img.w || box[0] !== 0 || box[2] !== ow;
  const needV = oh !== img.h || box[1] !== 0 || box[3] !== oh;
  const vert = coefficients(img.h, box[1], box[3], oh, filter);
  let src = img;
  let rowShift = 0;
  if (needH) {
    const hor = coefficients(img.w, box[0], box[2], ow, filter);
    const first = vert.bounds[0];
    const last = vert.bounds[oh * 2 - 2] + vert.bounds[oh * 2 - 1];
    const rows = needV ? last - first : img.h;
    const y0 = needV ? first : 0;
    const tmp = image(ow, rows);
    for (let y = 0; y < rows; y++) {
      const row = (y + y0) * img.w * 3;
      for (let xx = 0; xx < ow; xx++) {
        const xmin = hor.bounds[xx * 2];
        const xmax = hor.bounds[xx * 2 + 1];
        const k = xx * hor.ksize;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let x = 0; x < xmax; x++) {
          const p = row + (x + xmin) * 3;
          const w = hor.kk[k + x];
          r += img.data[p] * w;
          g += img.data[p + 1] * w;
          b += img.data[p + 2] * w;
        }
        const o = (y * ow + xx) * 3;
        tmp.data[o] = clip8(r);
        tmp.data[o + 1] = clip8(g);
        tmp.data[o + 2] = clip8(b);
      }
    }
    src = tmp;
    rowShift = needV ? first : 0;
  }
  if (!needV) return src;
  const out = image(src.w, oh);
  for (let yy = 0; yy < oh; yy++) {
    const ymin = vert.bounds[yy * 2] - rowShift;
    const ymax = vert.bounds[yy * 2 + 1];
    const k = yy * vert.ksize;
    for (let x = 0; x < src.w; x++) {
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let y = 0; y < ymax; y++) {
        const p = ((y + ymin) * src.w + x) * 3;
        const w = vert.kk[k + y];
        r += src.data[p] * w;
        g += src.data[p + 1] * w;
        b += src.data[p + 2] * w;
      }
      const o = (yy * src.w + x) * 3;
      out.data[o] = clip8(r);
      out.data[o + 1] = clip8(g);
      out.data[o + 2] = clip8(b);
    }
  }
  return out;
}

function crop(img, left, top, size) {
  const out = image(size, size);
  for (let y = 0; y < size; y++) {
    const from = ((y + top) * img.w + left) * 3;
    out.data.set(img.data.subarray(from, from + size * 3), y * size * 3);
  }
  return out;
}

// images.min_side_for: the shorter side a photo is decoded at for a model of input `size`.
export function minSideFor(size) {
  return Math.max(2 * size, 256);
}

// images._reduce: box-average down by a whole factor while the shorter side stays >= minSide (whole blocks only).
export function reduce(img, minSide) {
  const factor = Math.floor(Math.min(img.w, img.h) / minSide);
  if (factor < 2) return { img, factor: 1 };
  const w = Math.floor(img.w / factor);
  const h = Math.floor(img.h / factor);
  return { img: resize(img, w, h, "box", [0, 0, w * factor, h * factor]), factor };
}

// images.resize_square: the shorter side to `size`, the centre cropped (or `region`, a square, resized).
export function resizeSquare(img, size, frame, region) {
  if (region) return resize(img, size, size, "bilinear", region);
  const [w, h] = frame ? frame.size : [img.w, img.h];
  const scale = size / Math.min(w, h);
  const nw = Math.max(size, Math.round(w * scale));
  const nh = Math.max(size, Math.round(h * scale));
  const left = Math.floor((nw - size) / 2);
  const top = Math.floor((nh - size) / 2);
  if (frame && frame.factor >= 2) {
    const fx = (nw / w) * frame.factor;
    const fy = (nh / h) * frame.factor;
    const box = [left / fx, top / fy, (left + size) / fx, (top + size) / fy];
    const clipped = [Math.max(0, box[0]), Math.max(0, box[1]), Math.min(img.w, box[2]), Math.min(img.h, box[3])];
    return resize(img, size, size, "bilinear", clipped);
  }
  return crop(resize(img, nw, nh, "bilinear"), left, top, size);
}

// ---- leafcut.py: the sheet around the leaf --------------------------------------------------------------------

const LINEAR = new Float64Array(256).map((_, i) => {
  const c = i / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

function labF(t) {
  return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
}

// Lab's a and b as OpenCV gives them for 8-bit RGB (offset by 128, 0-255).
function labAB(img) {
  const n = img.w * img.h;
  const a = new Uint8Array(n);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = LINEAR[img.data[i * 3]];
    const g = LINEAR[img.data[i * 3 + 1]];
    const bl = LINEAR[img.data[i * 3 + 2]];
    const fx = labF((0.412453 * r + 0.35758 * g + 0.180423 * bl) / 0.950456);
    const fy = labF(0.212671 * r + 0.71516 * g + 0.072169 * bl);
    const fz = labF((0.019334 * r + 0.119193 * g + 0.950227 * bl) / 1.088754);
    a[i] = Math.min(255, Math.max(0, Math.round(500 * (fx - fy) + 128)));
    b[i] = Math.min(255, Math.max(0, Math.round(200 * (fy - fz) + 128)));
  }
  return { a, b };
}

// leafcut.border_ring: the outer 1/16 on each side (at least 2 px).
function ring(w, h) {
  const bw = Math.max(2, Math.floor(Math.min(h, w) / 16));
  const out = new Uint8Array(w * h);
  let count = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y < bw || y >= h - bw || x < bw || x >= w - bw) {
        out[y * w + x] = 1;
        count++;
      }
    }
  }
  return { mask: out, count };
}

// leafcut.hist_quantile: np.quantile's default over the whole numbers a histogram counts.
export function histQuantile(hist, q) {
  const cum = new Float64Array(hist.length);
  let s = 0;
  for (let i = 0; i < hist.length; i++) cum[i] = s += hist[i];
  const n = s;
  const k = q * (n - 1);
  const lo = Math.floor(k);
  const search = (v) => {
    let i = 0;
    while (i < cum.length && cum[i] <= v) i++;
    return i;
  };
  const vLo = search(lo);
  const vHi = search(Math.min(lo + 1, n - 1));
  return vLo + (k - lo) * (vHi - vLo);
}

// OpenCV's Otsu threshold of 8-bit values (getThreshVal_Otsu_8u).
function otsu(values) {
  const hist = new Float64Array(256);
  for (const v of values) hist[v]++;
  const n = values.length;
  let mu = 0;
  for (let i = 0; i < 256; i++) mu += i * hist[i];
  mu /= n;
  let q1 = 0;
  let mu1 = 0;
  let best = 0;
  let bestAt = 0;
  const eps = 1.1920929e-7;
  for (let i = 0; i < 256; i++) {
    const p = hist[i] / n;
    mu1 *= q1;
    q1 += p;
    const q2 = 1 - q1;
    if (Math.min(q1, q2) < eps || Math.max(q1, q2) > 1 - eps) continue;
    mu1 = (mu1 + i * p) / q1;
    const mu2 = (mu - q1 * mu1) / q2;
    const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > best) {
      best = sigma;
      bestAt = i;
    }
  }
  return bestAt;
}

// leafcut.sheet_distance: each pixel's distance from the sheet's colour in Lab's (a, b), and the split.
function sheetDistance(img) {
  const { a, b } = labAB(img);
  const { mask } = ring(img.w, img.h);
  const histB = new Float64Array(256);
  for (let i = 0; i < mask.length; i++) if (mask[i]) histB[b[i]]++;
  const leastYellow = Math.floor(histQuantile(histB, 0.4));
  for (let v = leastYellow + 1; v < 256; v++) histB[v] = 0;
  const histA = new Float64Array(256);
  for (let i = 0; i < mask.length; i++) if (mask[i] && b[i] <= leastYellow) histA[a[i]]++;
  const bgA = Math.fround(histQuantile(histA, 0.5));
  const bgB = Math.fround(histQuantile(histB, 0.5));
  const dist = new Float32Array(a.length);
  const scaled = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const d = Math.fround(Math.hypot(Math.fround(a[i] - bgA), Math.fround(b[i] - bgB)));
    dist[i] = d;
    scaled[i] = Math.min(Math.fround(d * 4), 255);
  }
  const split = Math.min(30, Math.max(6, otsu(scaled) / 4));
  return { dist, split };
}

// leafcut.sheet_colour: the sheet's colour (RGB) as lit in this photo, or null.
function sheetColour(img) {
  const { dist, split } = sheetDistance(img);
  const { mask, count } = ring(img.w, img.h);
  let sheet = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] && dist[i] <= split) sheet++;
  if (sheet < 0.5 * count) return null;
  const hists = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  let unclipped = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i] || dist[i] > split) continue;
    const r = img.data[i * 3];
    const g = img.data[i * 3 + 1];
    const b = img.data[i * 3 + 2];
    if (r < 6 || r > 249 || g < 6 || g > 249 || b < 6 || b > 249) continue;
    unclipped++;
    hists[0][r]++;
    hists[1][g]++;
    hists[2][b]++;
  }
  if (unclipped < 0.25 * count) return null;
  return hists.map((h) => Math.fround(histQuantile(h, 0.5)));
}

const AXIS = (() => {
  const v = [Math.log(249 / 180), Math.log(107 / 180) - Math.log(253 / 249)];
  const n = Math.hypot(v[0], v[1]);
  return [v[0] / n, v[1] / n];
})();

// leafcut.light_of: where the photo's light lies on the warm-cool axis, or null without a sheet.
export function lightOf(img) {
  const colour = sheetColour(img);
  if (!colour) return null;
  const g = Math.max(colour[1], 1);
  return Math.log(Math.max(colour[0], 1) / g) * AXIS[0] + Math.log(Math.max(colour[2], 1) / g) * AXIS[1];
}

// leafcut.balance_to_sheet: each channel scaled so that the sheet comes out grey (white balance `sheet`).
export function balanceToSheet(img) {
  const colour = sheetColour(img);
  if (!colour) return img;
  const mean = Math.fround((colour[0] + colour[1] + colour[2]) / 3);
  return scaleChannels(img, colour.map((c) => Math.fround(Math.min(1.5, Math.max(0.67, mean / Math.max(c, 1))))));
}

// leafcut.scale_channels: each channel times its gain, rounded and clipped (a table per channel).
function scaleChannels(img, gains) {
  const tables = gains.map((gain) => {
    const t = new Uint8Array(256);
    for (let v = 0; v < 256; v++) t[v] = Math.min(255, Math.max(0, Math.fround(Math.fround(v * gain) + 0.5)));
    return t;
  });
  const out = image(img.w, img.h);
  for (let i = 0; i < img.data.length; i++) out.data[i] = tables[i % 3][img.data[i]];
  return out;
}

// leafcut.range_correction: a light beyond the training photos' taken back into their middle half.
export function rangeCorrection(img, lights) {
  const light = lightOf(img);
  const [seenLo, typicalLo, typicalHi, seenHi] = lights;
  if (light === null || (seenLo <= light && light <= seenHi)) return { img, light: null };
  const move = Math.min(typicalHi, Math.max(typicalLo, light)) - light;
  const logGains = [move * AXIS[0], 0, move * AXIS[1]];
  const mean = (logGains[0] + logGains[1] + logGains[2]) / 3;
  const gains = logGains.map((v) => Math.fround(Math.min(1.5, Math.max(0.67, Math.exp(v - mean)))));
  return { img: scaleChannels(img, gains), light: move < 0 ? "warm" : "cool" };
}

// ---- framing: images.leaf_region and leafcut.leaf_box ---------------------------------------------------------

const ELLIPSE5 = [
  [0, 0, 1, 0, 0],
  [1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1],
  [0, 0, 1, 0, 0],
];

// Erosion (`erode`) or dilation of a 0/1 mask by OpenCV's 5x5 ellipse; outside the image counts for nothing.
function morph(mask, w, h, erode) {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = erode ? 1 : 0;
      for (let dy = -2; dy <= 2 && v === (erode ? 1 : 0); dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          if (!ELLIPSE5[dy + 2][dx + 2]) continue;
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const m = mask[yy * w + xx];
          if (erode && !m) {
            v = 0;
            break;
          }
          if (!erode && m) {
            v = 1;
            break;
          }
        }
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

// leafcut.largest_filled: opened, closed, the largest 8-connected part kept, its holes filled.
function largestFilled(mask, w, h) {
  const opened = morph(morph(mask, w, h, true), w, h, false);
  const m = morph(morph(opened, w, h, false), w, h, true);
  const labels = new Int32Array(w * h);
  let best = 0;
  let bestArea = 0;
  let next = 0;
  const stack = [];
  for (let i = 0; i < m.length; i++) {
    if (!m[i] || labels[i]) continue;
    next++;
    let area = 0;
    labels[i] = next;
    stack.push(i);
    while (stack.length) {
      const p = stack.pop();
      area++;
      const px = p % w;
      const py = (p - px) / w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const x = px + dx;
          const y = py + dy;
          if (x < 0 || y < 0 || x >= w || y >= h) continue;
          const q = y * w + x;
          if (m[q] && !labels[q]) {
            labels[q] = next;
            stack.push(q);
          }
        }
      }
    }
    if (area > bestArea) {
      bestArea = area;
      best = next;
    }
  }
  const out = new Uint8Array(w * h);
  if (!best) return out;
  // Holes: what of the rest cannot be reached from the border (4-connected).
  const outside = new Uint8Array(w * h);
  for (let i = 0; i < m.length; i++) {
    const x = i % w;
    const y = (i - x) / w;
    if ((x === 0 || y === 0 || x === w - 1 || y === h - 1) && labels[i] !== best) {
      outside[i] = 1;
      stack.push(i);
    }
  }
  while (stack.length) {
    const p = stack.pop();
    const px = p % w;
    const py = (p - px) / w;
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      const x = px + dx;
      const y = py + dy;
      if (x < 0 || y < 0 || x >= w || y >= h) continue;
      const q = y * w + x;
      if (!outside[q] && labels[q] !== best) {
        outside[q] = 1;
        stack.push(q);
      }
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

function cross(o, a, b) {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

// leafcut.solidity: the mask's area over its convex hull's.
function solidity(mask, w, h) {
  const points = [];
  let area = 0;
  for (let y = 0; y < h; y++) {
    let lo = -1;
    let hi = -1;
    for (let x = 0; x < w; x++) {
      if (mask[y * w + x]) {
        area++;
        if (lo < 0) lo = x;
        hi = x;
      }
    }
    if (lo >= 0) {
      points.push([lo, y]);
      if (hi !== lo) points.push([hi, y]);
    }
  }
  if (points.length < 3) return 0;
  points.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const lower = [];
  for (const p of points) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper = [];
  for (let i = points.length - 1; i >= 0; i--) {
    const p = points[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  const hull = lower.slice(0, -1).concat(upper.slice(0, -1));
  let twice = 0;
  for (let i = 0; i < hull.length; i++) {
    const [x0, y0] = hull[i];
    const [x1, y1] = hull[(i + 1) % hull.length];
    twice += x0 * y1 - x1 * y0;
  }
  const hullArea = Math.abs(twice) / 2;
  return hullArea > 0 ? area / hullArea : 0;
}

// leafcut.leaf_box: the box around the leaf of a photo of one leaf on a plain sheet, or null.
function leafBox(img, maxShare, maxBorder = 0.15) {
  const { w, h } = img;
  const { dist, split } = sheetDistance(img);
  const rough = new Uint8Array(w * h);
  let count = 0;
  for (let i = 0; i < rough.length; i++) if (dist[i] > split) (rough[i] = 1), count++;
  if (count / rough.length > maxShare + 0.1) return null;
  const { mask: border, count: borderCount } = ring(w, h);
  let onBorder = 0;
  for (let i = 0; i < rough.length; i++) if (border[i] && rough[i]) onBorder++;
  if (onBorder / borderCount > maxBorder) return null;
  const mask = largestFilled(rough, w, h);
  let area = 0;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!mask[y * w + x]) continue;
      area++;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  const share = area / mask.length;
  if (!(share >= 0.03 && share <= maxShare && solidity(mask, w, h) >= 0.8)) return null;
  return [x0, y0, x1 + 1, y1 + 1];
}

const FRAME_CUT_PX = 96;
const FRAME_BELOW = 0.6;
const FRAME_FILL = 0.85;

// images.leaf_region: the square around a small leaf on a plain sheet, or null (the centre crop).
export function leafRegion(img) {
  const small = resize(img, FRAME_CUT_PX, FRAME_CUT_PX, "bilinear");
  const aspect = Math.max(img.w, img.h) / Math.min(img.w, img.h);
  const box = leafBox(small, FRAME_BELOW ** 2 / aspect);
  if (!box) return null;
  const sx = img.w / FRAME_CUT_PX;
  const sy = img.h / FRAME_CUT_PX;
  const [x0, y0, x1, y1] = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
  const shorter = Math.min(img.w, img.h);
  const span = Math.max(x1 - x0, y1 - y0);
  if (span >= FRAME_BELOW * shorter) return null;
  const side = Math.min(shorter, span / FRAME_FILL);
  const left = Math.min(Math.max((x0 + x1 - side) / 2, 0), img.w - side);
  const top = Math.min(Math.max((y0 + y1 - side) / 2, 0), img.h - side);
  return [left, top, left + side, top + side];
}

// ---- imaging/quality.py: the photo checks -------------------------------------------------------------------

const MIN_SIDE = 64;
const DARK_P95 = 40;
const BRIGHT_MEAN = 240;
const BLUR_LAPLACIAN_VAR = 10;
const ONE_COLOUR_SHARE = 0.9;
const COLOUR_SPREAD = 4;
const COLOUR_SATURATION = 15;
const NO_COLOUR_SHARE = 0.01;
const MEASURE_PX = 256;

function thumbnail(img, px) {
  if (Math.max(img.w, img.h) <= px) return img;
  const aspect = img.w / img.h;
  let [x, y] = [px, px];
  const roundAspect = (n, key) => Math.max([Math.floor(n), Math.ceil(n)].sort((p, q) => key(p) - key(q))[0], 1);
  if (x / y >= aspect) x = roundAspect(y * aspect, (n) => Math.abs(aspect - n / y));
  else y = roundAspect(x / aspect, (n) => (n === 0 ? 0 : Math.abs(aspect - x / n)));
  // Pillow's reducing_gap 2: first a whole-factor box reduction, then bicubic.
  const fx = Math.max(1, Math.floor(img.w / x / 2));
  const fy = Math.max(1, Math.floor(img.h / y / 2));
  let src = img;
  let box = [0, 0, img.w, img.h];
  if (fx > 1 || fy > 1) {
    const w = Math.ceil(img.w / fx);
    const h = Math.ceil(img.h / fy);
    src = resize(img, w, h, "box", [0, 0, w * fx, h * fy]);
    box = [0, 0, img.w / fx, img.h / fy];
  }
  return resize(src, x, y, "bicubic", box);
}

export function checkPhoto(img, modelSize, ownSize) {
  const [w, h] = ownSize || [img.w, img.h];
  const problems = [];
  const minSide = modelSize ? Math.min(MIN_SIDE, modelSize) : MIN_SIDE;
  if (Math.min(w, h) < minSide) problems.push({ code: "too_small", params: { w, h, min_side: minSide } });
  const small = thumbnail(img, MEASURE_PX);
  const n = small.w * small.h;
  const grey = new Uint8Array(n);
  const hist = new Float64Array(256);
  let sum = 0;
  const coarse = new Float64Array(512);
  let coloured = 0;
  for (let i = 0; i < n; i++) {
    const r = small.data[i * 3];
    const g = small.data[i * 3 + 1];
    const b = small.data[i * 3 + 2];
    const v = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    grey[i] = v;
    hist[v]++;
    sum += v;
    coarse[(r >> 5) * 64 + (g >> 5) * 8 + (b >> 5)]++;
    const top = Math.max(r, g, b);
    const spread = top - Math.min(r, g, b);
    if (spread >= COLOUR_SPREAD && spread * 100 >= top * COLOUR_SATURATION) coloured++;
  }
  const mean = sum / n;
  if (histQuantile(hist, 0.95) < DARK_P95) problems.push({ code: "too_dark" });
  else if (mean > BRIGHT_MEAN) problems.push({ code: "too_bright" });
  const oneColour = Math.max(...coarse) / n >= ONE_COLOUR_SHARE;
  if (!problems.some((p) => p.code === "too_dark" || p.code === "too_bright")) {
    if (oneColour) problems.push({ code: "one_colour" });
    else if (coloured / n < NO_COLOUR_SHARE) problems.push({ code: "no_colour" });
  }
  if (!oneColour && laplacianVariance(grey, small.w, small.h) < BLUR_LAPLACIAN_VAR) problems.push({ code: "blurred" });
  return problems;
}

// OpenCV's Laplacian (3x3 aperture 1, reflect-101 border) and its variance.
function laplacianVariance(grey, w, h) {
  const at = (x, y) => {
    if (x < 0) x = w > 1 ? 1 : 0;
    else if (x >= w) x = w > 1 ? w - 2 : 0;
    if (y < 0) y = h > 1 ? 1 : 0;
    else if (y >= h) y = h > 1 ? h - 2 : 0;
    return grey[y * w + x];
  };
  let s = 0;
  let s2 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4 * at(x, y);
      s += v;
      s2 += v * v;
    }
  }
  const n = w * h;
  const m = s / n;
  return s2 / n - m * m;
}

// ---- the whole preparation ------------------------------------------------------------------------------------

// Bytes of a photo -> its pixels, upright (EXIF), transparency on white, colours as stored (no colour management:
// Pillow applies none).
export async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const { width: w, height: h } = bitmap;
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const out = image(w, h);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    out.data[j] = rgba[i];
    out.data[j + 1] = rgba[i + 1];
    out.data[j + 2] = rgba[i + 2];
  }
  return out;
}

// Why a model's preparation (its card's `input`) cannot run here, or null: morphology (OpenCV's) is not ported.
export function unsupported(input) {
  if (input.morphology && input.morphology !== "none") return `its preparation includes morphology (${input.morphology})`;
  if (!["none", "leaf", null, undefined].includes(input.framing)) return `its framing is ${input.framing}`;
  if (!["none", "sheet", "light-range", null, undefined].includes(input.white_balance)) return `its white balance is ${input.white_balance}`;
  return null;
}

// The photo decoded as images.load does: reduced by a whole factor, and the leaf's square if the model frames it.
async function load(blob, input) {
  const whole = await decode(blob);
  const { img, factor } = reduce(whole, minSideFor(input.size));
  const frame = { size: [whole.w, whole.h], factor };
  const region = input.framing === "leaf" ? leafRegion(img) : null;
  return { whole, img, frame, region };
}

// What the model's card says is done to a photo (`input`: size, framing, white_balance, light_range): the square the
// model sees, the photo's problems, whether it was framed and which light was corrected.
export async function prepare(blob, input) {
  const { whole, img, frame, region } = await load(blob, input);
  let square = resizeSquare(img, input.size, frame, region);
  let light = null;
  if (input.white_balance === "light-range" && input.light_range) {
    ({ img: square, light } = rangeCorrection(square, input.light_range));
  } else if (input.white_balance === "sheet") {
    square = balanceToSheet(square);
  }
  const problems = checkPhoto(img, input.size, [whole.w, whole.h]);
  return { square, problems, framed: region !== null, light };
}

// The square the heat map is drawn over (explain.explain_bytes): the model's own square of the photo, framed the same
// way, at `px` (explain.DISPLAY_SIZE) and without the light correction, so the grower sees the photo's own colours.
// Decoded again when asked for (a tap), rather than kept for every answer on the page.
export async function displaySquare(blob, input, px) {
  const { img, frame, region } = await load(blob, input);
  return resizeSquare(img, Math.max(input.size, px), frame, region);
}
