// The mobile-ticket barcode record, v1 (mirror of domain/ticket_record.py).
// Format, signature inputs and verification order: docs/ticket-record.md.
// ES module, WebCrypto only (ECDSA P-256 / SHA-256, raw r||s signatures); no third-party code.
//
//   presentation = static record || timestamp (u32, Unix seconds) || device signature (64 bytes)
//
// Every function that touches keys is async (WebCrypto). decode() is synchronous.

export const FORMAT_VERSION = 1;
export const REFRESH_SECONDS = 30;
export const DEFAULT_FRESHNESS_SECONDS = 90;
export const MAX_PRESENTATION_BYTES = 400;
export const TRUST_LIST_FORMAT = "ekp-ticket-trust/1";

export const REASONS = Object.freeze({
  MALFORMED: "malformed",
  UNSUPPORTED_VERSION: "unsupported_version",
  UNKNOWN_KEY: "unknown_key",
  FORGED: "forged",
  BAD_DEVICE_SIGNATURE: "bad_device_signature",
  STALE: "stale",
  REVOKED: "revoked",
  NOT_YET_VALID: "not_yet_valid",
  EXPIRED: "expired",
});

export const REVOCATIONS = Object.freeze({
  DEVICE_UNBOUND: "device_unbound",
  CANCELLED: "cancelled",
  REFUNDED: "refunded",
  CHARGEBACK: "chargeback",
  CARD_BLOCKED: "card_blocked",
  OTHER: "other",
});
const KNOWN_REVOCATIONS = new Set(Object.values(REVOCATIONS));

const SIGNATURE_BYTES = 64;
const DEVICE_KEY_BYTES = 33;
const TIMESTAMP_BYTES = 4;
const HEADER_BYTES = 52;
const MAX_PRODUCT_CODE_BYTES = 16;
const MAX_INITIALS_BYTES = 16;
const MIN_STATIC_BYTES = HEADER_BYTES + 1 + 1 + 1 + SIGNATURE_BYTES; // 119
const PRESENTATION_SUFFIX_BYTES = TIMESTAMP_BYTES + SIGNATURE_BYTES; // 68
const MAX_TIMESTAMP = 0xffffffff;
const MAX_KEY_ID = 0xffff;
const MAX_TICKET_ID = 2 ** 48 - 1;
const MAX_MINUTES = 4223371679; // 9999-12-31 23:59 UTC, as in the Python decoder

const ISSUER_CONTEXT = new Uint8Array([0x45, 0x4b, 0x50, 0x31, 0x49]); // "EKP1I"
const DEVICE_CONTEXT = new Uint8Array([0x45, 0x4b, 0x50, 0x31, 0x44]); // "EKP1D"

const EC_PARAMS = Object.freeze({ name: "ECDSA", namedCurve: "P-256" });
const ECDSA_SHA256 = Object.freeze({ name: "ECDSA", hash: "SHA-256" });

// P-256 (secp256r1): y^2 = x^3 - 3x + b over GF(p); p = 3 (mod 4), so sqrt(a) = a^((p+1)/4).
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const P256_SQRT_EXPONENT = (P256_P + 1n) / 4n;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class RecordError extends Error {
  constructor(reason, detail) {
    super(`${reason}: ${detail}`);
    this.name = "RecordError";
    this.reason = reason;
    this.detail = detail;
  }
}

function malformed(detail) {
  return new RecordError(REASONS.MALFORMED, detail);
}

function toBytes(data) {
  if (data instanceof Uint8Array) return new Uint8Array(data); // copy: callers may reuse buffers
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError("expected bytes (Uint8Array, ArrayBuffer or array of numbers)");
}

function concat(...parts) {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function bytesToBigInt(bytes) {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function bigIntTo32Bytes(value) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i -= 1) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

function modPow(base, exponent, modulus) {
  let result = 1n;
  base %= modulus;
  while (exponent > 0n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
    exponent >>= 1n;
  }
  return result;
}

function mod(value, modulus) {
  const r = value % modulus;
  return r < 0n ? r + modulus : r;
}

/** 33-byte compressed P-256 point -> 65-byte uncompressed (0x04||x||y), as WebCrypto imports. */
export function decompressPublicKey(compressed) {
  const bytes = toBytes(compressed);
  if (bytes.length !== DEVICE_KEY_BYTES || (bytes[0] !== 2 && bytes[0] !== 3)) {
    throw malformed("device key is not a compressed point");
  }
  const x = bytesToBigInt(bytes.subarray(1));
  if (x >= P256_P) throw malformed("device key is not on P-256");
  const rhs = mod(x * x * x - 3n * x + P256_B, P256_P);
  let y = modPow(rhs, P256_SQRT_EXPONENT, P256_P);
  if ((y * y) % P256_P !== rhs) throw malformed("device key is not on P-256");
  if ((y & 1n) !== BigInt(bytes[0] & 1)) y = P256_P - y;
  if (y === P256_P) throw malformed("device key is not on P-256");
  return concat(new Uint8Array([4]), bytes.subarray(1), bigIntTo32Bytes(y));
}

/** 65-byte uncompressed point (WebCrypto exportKey "raw") -> 33-byte compressed point. */
export function compressPublicKey(uncompressed) {
  const bytes = toBytes(uncompressed);
  if (bytes.length === DEVICE_KEY_BYTES) {
    decompressPublicKey(bytes); // validates
    return bytes;
  }
  if (bytes.length !== 65 || bytes[0] !== 4) throw malformed("not an uncompressed P-256 point");
  const out = new Uint8Array(DEVICE_KEY_BYTES);
  out[0] = 2 | (bytes[64] & 1);
  out.set(bytes.subarray(1, 33), 1);
  return out;
}

/** A new non-extractable device key pair (keep it in IndexedDB; the private key never leaves). */
export async function generateDeviceKey() {
  return crypto.subtle.generateKey(EC_PARAMS, false, ["sign", "verify"]);
}

/** The compressed public key of a device key pair, to send to the server when binding a ticket. */
export async function exportDevicePublicKey(publicKey) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
  return compressPublicKey(raw);
}

function parseStatic(bytes) {
  if (bytes.length === 0) throw malformed("empty");
  if (bytes[0] !== FORMAT_VERSION) {
    throw new RecordError(REASONS.UNSUPPORTED_VERSION, `version ${bytes[0]}`);
  }
  if (bytes.length < MIN_STATIC_BYTES) throw malformed("too short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyId = view.getUint16(1);
  const ticketId = view.getUint16(3) * 2 ** 32 + view.getUint32(5);
  const validFromMinutes = view.getUint32(9);
  const validUntilMinutes = view.getUint32(13);
  const birthYear = view.getUint16(17);
  const devicePublicKey = bytes.slice(19, 19 + DEVICE_KEY_BYTES);
  let offset = HEADER_BYTES;
  const productLength = bytes[offset];
  offset += 1;
  if (productLength < 1 || productLength > MAX_PRODUCT_CODE_BYTES || bytes.length < offset + productLength + 1) {
    throw malformed("product code length");
  }
  const product = bytes.subarray(offset, offset + productLength);
  offset += productLength;
  for (const byte of product) {
    if (byte < 0x21 || byte > 0x7e) throw malformed("product code characters");
  }
  const initialsLength = bytes[offset];
  offset += 1;
  if (initialsLength > MAX_INITIALS_BYTES || bytes.length < offset + initialsLength + SIGNATURE_BYTES) {
    throw malformed("initials length");
  }
  let holderInitials;
  try {
    holderInitials = utf8.decode(bytes.subarray(offset, offset + initialsLength));
  } catch {
    throw malformed("initials are not UTF-8");
  }
  offset += initialsLength;
  const issuerSignature = bytes.slice(offset, offset + SIGNATURE_BYTES);
  offset += SIGNATURE_BYTES;
  if (validUntilMinutes <= validFromMinutes || validUntilMinutes > MAX_MINUTES) throw malformed("validity period");
  const devicePublicKeyRaw = decompressPublicKey(devicePublicKey); // throws malformed
  const raw = bytes.slice(0, offset);
  const record = {
    version: FORMAT_VERSION,
    keyId,
    ticketId,
    productCode: String.fromCharCode(...product),
    validFrom: validFromMinutes * 60, // Unix seconds, inclusive
    validUntil: validUntilMinutes * 60, // Unix seconds, exclusive
    holderInitials,
    birthYear: birthYear === 0 ? null : birthYear,
    devicePublicKey,
    devicePublicKeyRaw,
    issuerSignature,
    raw,
    signedBody: raw.slice(0, raw.length - SIGNATURE_BYTES),
  };
  return { record, length: offset };
}

/** Decode a complete static record (nothing may follow it). Throws RecordError. */
export function decodeStatic(data) {
  const bytes = toBytes(data);
  const { record, length } = parseStatic(bytes);
  if (length !== bytes.length) throw malformed("trailing bytes after static record");
  return record;
}

/**
 * Decode a presentation (the Aztec payload): structure only, no signature checks.
 * Returns {record, timestamp, deviceSignature}; throws RecordError (reason malformed or
 * unsupported_version).
 */
export function decode(data) {
  const bytes = toBytes(data);
  if (bytes.length > MAX_PRESENTATION_BYTES) throw malformed("too long");
  const { record, length } = parseStatic(bytes);
  if (bytes.length !== length + PRESENTATION_SUFFIX_BYTES) throw malformed("presentation length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const timestamp = view.getUint32(length);
  const deviceSignature = bytes.slice(length + TIMESTAMP_BYTES);
  return { record, timestamp, deviceSignature };
}

function checkTimestamp(ts) {
  if (!Number.isInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP) {
    throw new RangeError("timestamp must be an integer number of Unix seconds (u32)");
  }
}

function timestampBytes(ts) {
  const out = new Uint8Array(TIMESTAMP_BYTES);
  new DataView(out.buffer).setUint32(0, ts);
  return out;
}

/** Exactly the bytes the issuer signs: "EKP1I" || record without its signature. */
export function issuerSignatureInput(signedBody) {
  return concat(ISSUER_CONTEXT, toBytes(signedBody));
}

/** Exactly the bytes the device signs: "EKP1D" || whole static record || u32 timestamp. */
export function deviceSignatureInput(staticBytes, tsSeconds) {
  checkTimestamp(tsSeconds);
  return concat(DEVICE_CONTEXT, toBytes(staticBytes), timestampBytes(tsSeconds));
}

/** The Aztec payload: static record || u32 timestamp || 64-byte raw device signature. */
export function encodePresentation(staticBytes, tsSeconds, deviceSig) {
  checkTimestamp(tsSeconds);
  const signature = toBytes(deviceSig);
  if (signature.length !== SIGNATURE_BYTES) throw new RangeError("device signature must be 64 bytes (raw r||s)");
  const record = toBytes(staticBytes);
  decodeStatic(record); // refuses to wrap anything that is not a static record
  return concat(record, timestampBytes(tsSeconds), signature);
}

/**
 * What the phone does at inspection: sign staticBytes || ts with the device's private key
 * (a CryptoKey, or a CryptoKeyPair) and return the presentation bytes to draw as an Aztec code.
 */
export async function signPresentation(deviceKey, staticBytes, tsSeconds) {
  const privateKey = deviceKey && deviceKey.privateKey ? deviceKey.privateKey : deviceKey;
  const record = toBytes(staticBytes);
  const input = deviceSignatureInput(record, tsSeconds);
  const signature = new Uint8Array(await crypto.subtle.sign(ECDSA_SHA256, privateKey, input));
  return encodePresentation(record, tsSeconds, signature);
}

function isCryptoKey(value) {
  return typeof CryptoKey !== "undefined" && value instanceof CryptoKey;
}

/** Import one issuer JWK (as served in the trust list) as a verify-only CryptoKey. */
export async function importIssuerJwk(jwk) {
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256") throw new TypeError("not a P-256 JWK");
  const { kty, crv, x, y } = jwk;
  return crypto.subtle.importKey("jwk", { kty, crv, x, y, ext: true }, EC_PARAMS, false, ["verify"]);
}

function lookupIssuerKey(issuerKeys, keyId) {
  if (!issuerKeys) return undefined;
  if (issuerKeys instanceof Map) return issuerKeys.get(keyId) ?? issuerKeys.get(String(keyId));
  return Object.prototype.hasOwnProperty.call(issuerKeys, String(keyId)) ? issuerKeys[String(keyId)] : undefined;
}

function isRevoked(revoked, ticketId) {
  if (!revoked) return false;
  if (revoked instanceof Set || revoked instanceof Map) return revoked.has(ticketId);
  if (Array.isArray(revoked)) return revoked.includes(ticketId);
  throw new TypeError("revoked must be a Set, a Map or an array of ticket ids");
}

function revocationOf(revoked, ticketId) {
  const why = revoked instanceof Map ? revoked.get(ticketId) : undefined;
  return KNOWN_REVOCATIONS.has(why) ? why : REVOCATIONS.OTHER;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The key of a revoked phone in a revokedDevices Set: "<ticket id>:<hex of the 33-byte device key>". */
export function deviceRevocationKey(ticketId, devicePublicKey) {
  return `${ticketId}:${toHex(toBytes(devicePublicKey))}`;
}

function ticketFields(record) {
  return {
    keyId: record.keyId,
    ticketId: record.ticketId,
    productCode: record.productCode,
    validFrom: record.validFrom,
    validUntil: record.validUntil,
    holderInitials: record.holderInitials,
    birthYear: record.birthYear,
    devicePublicKey: record.devicePublicKey,
  };
}

function verdict(valid, reason, ticket = null, presentedAt = null, revocation = null) {
  return { valid, reason, code: valid ? "valid" : reason, ticket, presentedAt, revocation };
}

/**
 * Check a scanned presentation offline, in the order of docs/ticket-record.md:
 * structure/version, issuer key id, issuer signature, device signature, freshness
 * (|now - ts| <= freshness), revocation, validity period (validFrom <= now < validUntil).
 *
 * issuerKeys: Map or object from key id to CryptoKey (verify) or P-256 JWK.
 * revoked: Map (ticket id -> revocation reason), Set or array of ticket ids (numbers).
 * nowSeconds: Unix seconds (Date.now() / 1000).
 * revokedDevices: Set of deviceRevocationKey(ticketId, deviceKey) of phones unbound from a ticket.
 * Returns {valid, reason, code, ticket, presentedAt, revocation}; ticket is set once the issuer
 * signature has been checked (so an expired or revoked ticket still shows what it is), else null;
 * revocation names why a revoked code is revoked (device_unbound, cancelled, refunded, ...).
 */
export async function verify(bytes, issuerKeys, revoked, nowSeconds, freshness = DEFAULT_FRESHNESS_SECONDS,
  revokedDevices = null) {
  if (typeof nowSeconds !== "number" || !Number.isFinite(nowSeconds)) {
    throw new TypeError("nowSeconds must be a finite number of Unix seconds");
  }
  const now = Math.floor(nowSeconds);
  let presentation;
  try {
    presentation = decode(bytes);
  } catch (error) {
    if (error instanceof RecordError) return verdict(false, error.reason);
    if (error instanceof TypeError) return verdict(false, REASONS.MALFORMED);
    throw error;
  }
  const { record, timestamp, deviceSignature } = presentation;
  let issuerKey = lookupIssuerKey(issuerKeys, record.keyId);
  if (issuerKey === undefined || issuerKey === null) return verdict(false, REASONS.UNKNOWN_KEY);
  if (!isCryptoKey(issuerKey)) {
    try {
      issuerKey = await importIssuerJwk(issuerKey);
    } catch {
      return verdict(false, REASONS.UNKNOWN_KEY);
    }
  }
  const issuerOk = await crypto.subtle.verify(
    ECDSA_SHA256, issuerKey, record.issuerSignature, issuerSignatureInput(record.signedBody),
  );
  if (!issuerOk) return verdict(false, REASONS.FORGED);
  const ticket = ticketFields(record);
  const refuse = (reason) => verdict(false, reason, ticket, timestamp);
  let deviceOk = false;
  try {
    const deviceKey = await crypto.subtle.importKey("raw", record.devicePublicKeyRaw, EC_PARAMS, false, ["verify"]);
    deviceOk = await crypto.subtle.verify(
      ECDSA_SHA256, deviceKey, deviceSignature, deviceSignatureInput(record.raw, timestamp),
    );
  } catch {
    deviceOk = false;
  }
  if (!deviceOk) return refuse(REASONS.BAD_DEVICE_SIGNATURE);
  if (Math.abs(now - timestamp) > freshness) return refuse(REASONS.STALE);
  if (isRevoked(revoked, record.ticketId)) {
    return verdict(false, REASONS.REVOKED, ticket, timestamp, revocationOf(revoked, record.ticketId));
  }
  if (revokedDevices && revokedDevices.has(deviceRevocationKey(record.ticketId, record.devicePublicKey))) {
    return verdict(false, REASONS.REVOKED, ticket, timestamp, REVOCATIONS.DEVICE_UNBOUND);
  }
  if (now < record.validFrom) return refuse(REASONS.NOT_YET_VALID);
  if (now >= record.validUntil) return refuse(REASONS.EXPIRED);
  return verdict(true, null, ticket, timestamp);
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Turn the server's trust list (GET JSON, cache it for offline use) into verify() arguments:
 * {issuerKeys: Map<number, CryptoKey>, revoked: Map<number, reason>, revokedDevices: Set<string>,
 * generatedAt, freshnessSeconds}.
 */
export async function loadTrustList(document) {
  if (!document || document.format !== TRUST_LIST_FORMAT) throw new TypeError("unknown trust list format");
  if (!Array.isArray(document.issuer_keys) || !Array.isArray(document.revoked)) {
    throw new TypeError("issuer_keys and revoked must be arrays");
  }
  const issuerKeys = new Map();
  for (const jwk of document.issuer_keys) {
    const keyId = Number(jwk.kid);
    if (!Number.isInteger(keyId) || keyId < 0 || keyId > MAX_KEY_ID) throw new TypeError("bad kid");
    issuerKeys.set(keyId, await importIssuerJwk(jwk));
  }
  const reasons = document.revocation_reasons ?? {};
  const devices = document.revoked_devices ?? [];
  if (typeof reasons !== "object" || Array.isArray(reasons) || !Array.isArray(devices)) {
    throw new TypeError("revocation_reasons must be an object and revoked_devices an array");
  }
  const revoked = new Map();
  for (const id of document.revoked) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_TICKET_ID) throw new TypeError("bad revoked ticket id");
    const why = reasons[String(id)];
    revoked.set(id, KNOWN_REVOCATIONS.has(why) ? why : REVOCATIONS.OTHER);
  }
  const revokedDevices = new Set();
  for (const entry of devices) {
    const id = entry && entry.ticket_id;
    if (!Number.isInteger(id) || id < 0 || id > MAX_TICKET_ID || typeof entry.device_key !== "string") {
      throw new TypeError("bad revoked device");
    }
    const key = fromBase64Url(entry.device_key);
    if (key.length !== DEVICE_KEY_BYTES || (key[0] !== 2 && key[0] !== 3)) throw new TypeError("bad revoked device key");
    revokedDevices.add(deviceRevocationKey(id, key));
  }
  return {
    issuerKeys,
    revoked,
    revokedDevices,
    generatedAt: document.generated_at,
    freshnessSeconds: Number.isInteger(document.freshness_seconds)
      ? document.freshness_seconds
      : DEFAULT_FRESHNESS_SECONDS,
  };
}
