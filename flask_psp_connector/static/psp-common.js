/**
 * psp-common.js: what the connector's browser modules (psp-payment.js, psp-express.js)
 * share: the error shown to the shopper, JSON requests, and small parsing helpers.
 */

/** Error raised for a failed step; its message is shown to the shopper. */
export class PaymentError extends Error {}

/** A JSON request; a network failure or an answer other than 2xx becomes a PaymentError. */
export async function request(url, { method = "GET", headers = {}, body } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new PaymentError("The payment service could not be reached. Check your connection and try again.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok && response.status !== 202) {
    throw new PaymentError(data.message || data.error || `The payment service answered ${response.status}.`);
  }
  return data;
}

/** `json` parsed (or taken as is when already an object); `fallback` when absent or invalid. */
export function parsed(json, fallback) {
  if (!json) return fallback;
  if (typeof json === "object") return json;
  try {
    return JSON.parse(json);
  } catch {
    return fallback;
  }
}

/** `url` with `params` set in its query string. */
export function withQuery(url, params) {
  const target = new URL(url, window.location.href);
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
  return target.toString();
}

/** `minor` units of `currency` as the page's language writes money (e.g. "€12.50"). */
export function formatAmount(minor, currency) {
  const format = new Intl.NumberFormat(document.documentElement.lang || undefined, { style: "currency", currency });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}
