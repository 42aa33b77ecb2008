// A photo made smaller in the browser before it is sent, as the desktop app does with upload_size.shrink_for_upload
// (whose docstring says why that size keeps everything the model and the quality checks need): turned by its EXIF
// orientation, drawn at most `longSide` px on its long side, a JPEG of `quality`, as a file named like the photo
// (`leaf.png` -> `leaf.jpg`). null where the photo is small already, the browser cannot draw it, or the JPEG would not
// be smaller: then the file goes as it is. One copy for
// both pages: the offline page imports it (feedback.js), the web page inlines it (ui/downscale.py).
export async function shrinkPhoto(file, longSide, quality) {
  if (!file || !file.type.startsWith("image/") || !window.createImageBitmap) return null;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    return null;
  }
  const long = Math.max(bitmap.width, bitmap.height);
  if (long <= longSide) {
    bitmap.close();
    return null;
  }
  const scale = longSide / long;
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", quality));
  if (!blob || blob.size >= file.size) return null;
  const stem = file.name.replace(/\.[^.]*$/, "") || "photo";
  return new File([blob], `${stem}.jpg`, { type: "image/jpeg", lastModified: file.lastModified });
}
