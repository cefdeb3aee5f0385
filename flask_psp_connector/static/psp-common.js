/**
 * psp-common.js: what the connector's browser modules (psp-payment.js, psp-express.js)
 * share: the error shown to the shopper, JSON requests, the confirmation of a payment,
 * what the shopper is told, and small parsing helpers.
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

/**
 * Confirm `payment` (the processor's answer to /payments) with Stripe.js, then have the
 * processor check and record it: how every payment ends, whichever element took it.
 *
 * @param {object} stripe the Stripe.js instance.
 * @param {object} elements the Elements group holding the payment details.
 * @param {object} payment {sClientSecret, paymentReference, cartId, merchantReturnUrl}.
 * @param {{billingDetails?: object, withClientSecret?: boolean,
 *   processor: (path: string, init: object) => Promise<object>}} how: the billing details
 *   to confirm with, whether to pass the client secret (not when the elements were
 *   created with it), and the call to the processor's API.
 * @returns {Promise<{paymentReference: string, outcome: string}>}
 */
export async function confirmPayment(stripe, elements, payment, { billingDetails, withClientSecret = true, processor }) {
  const returnUrl = withQuery(payment.merchantReturnUrl, {
    cartId: payment.cartId,
    paymentReference: payment.paymentReference,
  });
  const confirmParams = { return_url: returnUrl };
  if (billingDetails) confirmParams.payment_method_data = { billing_details: billingDetails };
  const confirmation = { elements, confirmParams, redirect: "if_required" };
  if (withClientSecret) confirmation.clientSecret = payment.sClientSecret;
  const { error, paymentIntent } = await stripe.confirmPayment(confirmation);
  if (error) throw new PaymentError(error.message);
  if (paymentIntent.status === "requires_action") throw new PaymentError("The payment needs another step; please try again.");
  if (paymentIntent.last_payment_error) throw new PaymentError(paymentIntent.last_payment_error.message);
  const recorded = await processor(`/confirmPayments/${encodeURIComponent(payment.paymentReference)}`, {
    method: "POST",
    body: { paymentIntent: paymentIntent.id },
  });
  return { paymentReference: payment.paymentReference, outcome: recorded.outcome };
}

/**
 * What a mounted element tells the shopper and the page: `show` a message (empty hides
 * it), `emit` a psp:* event on `container`, `fail` with an error, and `complete` with a
 * payment's result (a pending one is said to be processing; then `options.onComplete`,
 * else the browser goes to `completeUrl` with ?paymentReference=).
 *
 * @param {HTMLElement} container receives the events.
 * @param {HTMLElement|null|undefined} message the [data-psp-message] element.
 * @param {{onComplete?: Function, onError?: Function}} options the page's callbacks.
 */
export function feedback(container, message, options) {
  const show = (text) => {
    if (message) {
      message.textContent = text;
      message.hidden = !text;
    }
  };
  const emit = (name, detail) => container.dispatchEvent(new CustomEvent(name, { detail, bubbles: true }));
  const fail = (error) => {
    show(error.message || "The payment could not be completed.");
    emit("psp:error", { message: error.message });
    options.onError?.(error);
  };
  const complete = (result, completeUrl) => {
    if (result.outcome === "pending") {
      show("Your payment is processing. We will place your order as soon as it is confirmed.");
    }
    emit("psp:complete", result);
    if (options.onComplete) options.onComplete(result);
    else if (completeUrl) window.location.assign(withQuery(completeUrl, { paymentReference: result.paymentReference }));
  };
  return { show, emit, fail, complete };
}
