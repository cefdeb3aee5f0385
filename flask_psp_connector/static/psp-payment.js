/**
 * psp-payment.js: mounts the Stripe Payment Element and pays through the connector's
 * processor API, the way the upstream enabler's drop-in does.
 *
 * Markup (no inline script needed; Stripe.js must be loaded before this module):
 *
 *   <form>
 *     <div data-processor-url="https://shop.example" data-session-id="…"
 *          data-complete-url="/orders/42"></div>
 *     <p data-psp-message role="alert" hidden></p>
 *     <button type="submit">Pay</button>
 *   </form>
 *   <script src="https://js.stripe.com/v3/"></script>
 *   <script type="module" src=".../psp-assets/psp-payment.js"></script>
 *
 * Every element carrying data-processor-url and data-session-id is mounted when the
 * module loads. On success the browser goes to data-complete-url with
 * ?paymentReference=<payment id> appended. The container also receives the events
 * psp:ready, psp:complete (detail: {paymentReference, outcome}), psp:amountchange
 * (detail: {amount, currency}) and psp:error.
 *
 * The amount is read again right before each payment: if the cart changed since the
 * element was shown, nothing is confirmed; the element, every [data-psp-total] in the
 * form (the Pay button's amount, say) and the message show the new total, and the
 * shopper pays it with another click.
 */

import { PaymentError, formatAmount, parsed, request, withQuery } from "./psp-common.js";

function api(processorUrl, sessionId, path, { method = "GET", body } = {}) {
  return request(`${processorUrl}${path}`, { method, headers: { "X-Session-Id": sessionId }, body });
}

/**
 * The signed-in customer's Stripe session ({stripeCustomerId, ephemeralKey, sessionId}),
 * or null for a guest (204). Saved cards are a convenience: if the lookup fails the
 * shopper still pays as a guest.
 */
async function customerSession(processorUrl, sessionId) {
  try {
    const response = await fetch(`${processorUrl}/customer/session`, {
      headers: { "Content-Type": "application/json", "X-Session-Id": sessionId },
    });
    if (response.status !== 200) return null;
    const customer = await response.json();
    return customer && customer.sessionId ? customer : null;
  } catch {
    return null;
  }
}

/**
 * Mount the Payment Element into `container` and pay on its form's submit.
 *
 * @param {HTMLElement} container carries data-processor-url, data-session-id and
 *   data-complete-url.
 * @param {{onComplete?: Function, onError?: Function}} [options] called instead of the
 *   default navigation / inline message.
 * @returns {Promise<{submit: () => Promise<void>}>}
 */
export async function mountPayment(container, options = {}) {
  const { processorUrl, sessionId, completeUrl } = container.dataset;
  const form = container.closest("form");
  const button = form?.querySelector("button[type=submit], button:not([type])");
  const message = form?.querySelector("[data-psp-message]");
  const baseUrl = processorUrl.replace(/\/$/, "");
  const call = (path, init) => api(baseUrl, sessionId, path, init);
  let busy = false;

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

  const [elementConfig, config, customer] = await Promise.all([
    call("/config-element/payment"),
    call("/operations/config"),
    customerSession(baseUrl, sessionId),
  ]);
  const stripe = window.Stripe(config.publishableKey);
  const appearance = parsed(elementConfig.appearance, undefined);
  const elementsOptions = {
    mode: "payment",
    amount: elementConfig.cartInfo.amount,
    currency: elementConfig.cartInfo.currency.toLowerCase(),
    captureMethod: elementConfig.captureMethod,
  };
  if (appearance !== undefined) elementsOptions.appearance = appearance;
  if (elementConfig.setupFutureUsage) elementsOptions.setupFutureUsage = elementConfig.setupFutureUsage;
  if (customer) {
    // As the upstream enabler does: the CustomerSession lets the Payment Element show
    // the customer's saved payment methods and, if enabled, a "save" checkbox.
    elementsOptions.customerOptions = { customer: customer.stripeCustomerId, ephemeralKey: customer.ephemeralKey };
    elementsOptions.customerSessionClientSecret = customer.sessionId;
  }
  const elements = stripe.elements(elementsOptions);
  let shown = { amount: elementConfig.cartInfo.amount, currency: elementConfig.cartInfo.currency };

  /** Show `cartInfo` as the amount to pay; false (and the shopper told) when it changed. */
  function sameAmount(cartInfo) {
    if (!cartInfo || (cartInfo.amount === shown.amount && cartInfo.currency === shown.currency)) return true;
    shown = { amount: cartInfo.amount, currency: cartInfo.currency };
    elements.update({ amount: shown.amount, currency: shown.currency.toLowerCase() });
    const total = formatAmount(shown.amount, shown.currency);
    for (const node of form?.querySelectorAll("[data-psp-total]") || []) node.textContent = total;
    emit("psp:amountchange", { ...shown });
    return false;
  }
  const paymentOptions = { layout: parsed(elementConfig.layout, { type: "tabs" }) };
  if (elementConfig.collectBillingAddress !== "auto") {
    paymentOptions.fields = { billingDetails: { address: elementConfig.collectBillingAddress } };
  }
  elements.create("payment", paymentOptions).mount(container);
  if (button) button.disabled = false; // pages render it disabled until the element is ready

  const changed = () =>
    new PaymentError(`Your cart changed: the total is now ${formatAmount(shown.amount, shown.currency)}. ` +
      "Nothing was charged. Check the amount, then press Pay again.");

  async function pay() {
    if (!sameAmount((await call("/config-element/payment")).cartInfo)) throw changed();
    const { error: invalid } = await elements.submit();
    if (invalid) throw new PaymentError(invalid.message);
    const payment = await call("/payments", { method: "POST", body: {} });
    // The PaymentIntent's own amount, in case the cart changed a moment ago.
    if (!sameAmount(payment.cartInfo)) throw changed();
    const returnUrl = withQuery(payment.merchantReturnUrl, {
      cartId: payment.cartId,
      paymentReference: payment.paymentReference,
    });
    const confirmParams = { return_url: returnUrl };
    const billingAddress = parsed(payment.billingAddress, null);
    if (billingAddress) confirmParams.payment_method_data = { billing_details: billingAddress };
    const { error, paymentIntent } = await stripe.confirmPayment({
      elements,
      clientSecret: payment.sClientSecret,
      confirmParams,
      redirect: "if_required",
    });
    if (error) throw new PaymentError(error.message);
    if (paymentIntent.status === "requires_action") throw new PaymentError("The payment needs another step; please try again.");
    if (paymentIntent.last_payment_error) throw new PaymentError(paymentIntent.last_payment_error.message);
    const confirmation = await call(`/confirmPayments/${encodeURIComponent(payment.paymentReference)}`, {
      method: "POST",
      body: { paymentIntent: paymentIntent.id },
    });
    return { paymentReference: payment.paymentReference, outcome: confirmation.outcome };
  }

  async function submit() {
    if (busy) return; // a second click while paying must not start a second payment
    busy = true;
    if (button) button.disabled = true;
    show("");
    try {
      const result = await pay();
      emit("psp:complete", result);
      if (options.onComplete) options.onComplete(result);
      else if (completeUrl) window.location.assign(withQuery(completeUrl, { paymentReference: result.paymentReference }));
    } catch (error) {
      fail(error);
      busy = false;
      if (button) button.disabled = false;
    }
  }

  form?.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  emit("psp:ready", {});
  return { submit };
}

for (const container of document.querySelectorAll("[data-processor-url][data-session-id]")) {
  mountPayment(container).catch((error) => {
    const message = container.closest("form")?.querySelector("[data-psp-message]");
    if (message) {
      message.textContent = error.message || "The payment form could not be loaded.";
      message.hidden = false;
    }
    container.dispatchEvent(new CustomEvent("psp:error", { detail: { message: error.message }, bubbles: true }));
  });
}
