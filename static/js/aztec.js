// Draws an Aztec code on a <canvas> with zxing-wasm's writer (self-hosted wasm, no CDN).
import { prepareZXingModule, writeBarcode } from "/static/vendor/zxing/es/writer/index.js";

export const WRITER_WASM = "/static/vendor/zxing/writer/zxing_writer.wasm";
export const QUIET_ZONE_MODULES = 2;
export const EC_LEVEL = "23";

const OVERRIDES = { locateFile: (path, prefix) => (path.endsWith(".wasm") ? WRITER_WASM : prefix + path) };

prepareZXingModule({ overrides: OVERRIDES, fireImmediately: false });

/** Fetch, compile and instantiate the writer's wasm now (e.g. while the start page is idle), so the first code
 * is drawn without waiting for it. The same module is used by drawAztec afterwards. */
export function warmUpWriter() {
  return prepareZXingModule({ overrides: OVERRIDES, fireImmediately: true });
}

/** The module matrix of an Aztec code for `bytes`: {width, height, dark(x, y)}. */
export async function aztecModules(bytes) {
  const result = await writeBarcode(bytes, { format: "Aztec", ecLevel: EC_LEVEL, scale: 1, addQuietZones: false });
  if (result.error) throw new Error(result.error);
  const { data, width, height } = result.symbol;
  return { width, height, dark: (x, y) => data[y * width + x] < 128 };
}

/**
 * Paint `bytes` as an Aztec code on `canvas`: black on white, a quiet zone of QUIET_ZONE_MODULES,
 * whole device pixels per module so the edges stay sharp. Returns the symbol size in modules.
 */
export async function drawAztec(canvas, bytes, pixelsPerModule = 0) {
  const symbol = await aztecModules(bytes);
  const total = symbol.width + 2 * QUIET_ZONE_MODULES;
  const cssWidth = canvas.clientWidth || 300;
  const scale = pixelsPerModule || Math.max(2, Math.floor((cssWidth * (window.devicePixelRatio || 1)) / total));
  canvas.width = total * scale;
  canvas.height = (symbol.height + 2 * QUIET_ZONE_MODULES) * scale;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#000";
  for (let y = 0; y < symbol.height; y += 1) {
    for (let x = 0; x < symbol.width; x += 1) {
      if (symbol.dark(x, y)) ctx.fillRect((x + QUIET_ZONE_MODULES) * scale, (y + QUIET_ZONE_MODULES) * scale, scale, scale);
    }
  }
  return symbol.width;
}
