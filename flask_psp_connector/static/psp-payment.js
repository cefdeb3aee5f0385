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
 *
 * Flows (/config-element's flowType, as upstream's enabler): "deferred" mounts the
 * element with the cart's amount and creates the PaymentIntent on Pay; "pi_first" asks
 * /payments for the PaymentIntent first and mounts the element with its client secret
 * (payment methods that need the PaymentIntent up front). A payment whose confirmation
 * answers "pending" (the money is still on its way: bank debits, crypto...) is reported
 * as processing: the message says so and psp:complete carries outcome "pending".
 */

import { PaymentError, confirmPayment, feedback, formatAmount, parsed, request } from "./psp-common.js";

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
  const { show, emit, fail, complete } = feedback(container, message, options);

  const [elementConfig, config, customer] = await Promise.all([
    call("/config-element/payment"),
    call("/operations/config"),
    customerSession(baseUrl, sessionId),
  ]);
  const stripe = window.Stripe(config.publishableKey);
  const appearance = parsed(elementConfig.appearance, undefined);
  const piFirst = elementConfig.flowType === "pi_first";
  // pi_first: the PaymentIntent exists before the element is mounted (upstream's enabler).
  let prepared = piFirst ? await call("/payments", { method: "POST", body: {} }) : null;

  function elementsFor(payment) {
    if (payment) {
      const options = { clientSecret: payment.sClientSecret };
      if (appearance !== undefined) options.appearance = appearance;
      return stripe.elements(options);
    }
    const options = {
      mode: "payment",
      amount: elementConfig.cartInfo.amount,
      currency: elementConfig.cartInfo.currency.toLowerCase(),
      captureMethod: elementConfig.captureMethod,
    };
    if (appearance !== undefined) options.appearance = appearance;
    if (elementConfig.setupFutureUsage) options.setupFutureUsage = elementConfig.setupFutureUsage;
    if (customer) {
      // As the upstream enabler does: the CustomerSession lets the Payment Element show
      // the customer's saved payment methods and, if enabled, a "save" checkbox.
      options.customerOptions = { customer: customer.stripeCustomerId, ephemeralKey: customer.ephemeralKey };
      options.customerSessionClientSecret = customer.sessionId;
    }
    return stripe.elements(options);
  }
  let elements = elementsFor(prepared);
  let shown = prepared ? { ...prepared.cartInfo } : { amount: elementConfig.cartInfo.amount, currency: elementConfig.cartInfo.currency };

  /** Show `cartInfo` as the amount to pay; false (and the shopper told) when it changed. */
  function showTotal(cartInfo) {
    shown = { amount: cartInfo.amount, currency: cartInfo.currency };
    const total = formatAmount(shown.amount, shown.currency);
    for (const node of form?.querySelectorAll("[data-psp-total]") || []) node.textContent = total;
    emit("psp:amountchange", { ...shown });
  }
  function sameAmount(cartInfo) {
    if (!cartInfo || (cartInfo.amount === shown.amount && cartInfo.currency === shown.currency)) return true;
    if (!piFirst) elements.update({ amount: cartInfo.amount, currency: cartInfo.currency.toLowerCase() });
    showTotal(cartInfo);
    return false;
  }
  // STRIPE_BEHAVIOR_PAYMENT_ELEMENT's options win over the layout and billing fields.
  const behavior = parsed(elementConfig.paymentElementOptions, {}) || {};
  const paymentOptions = { layout: behavior.layout ?? parsed(elementConfig.layout, { type: "tabs" }) };
  if (behavior.fields) paymentOptions.fields = behavior.fields;
  else if (elementConfig.collectBillingAddress !== "auto") {
    paymentOptions.fields = { billingDetails: { address: elementConfig.collectBillingAddress } };
  }
  for (const key of ["terms", "wallets", "defaultValues", "business", "paymentMethodOrder", "readOnly"]) {
    if (behavior[key] !== undefined) paymentOptions[key] = behavior[key];
  }
  let element = elements.create("payment", paymentOptions);
  element.mount(container);
  if (button) button.disabled = false; // pages render it disabled until the element is ready

  /** pi_first: a changed cart has a new PaymentIntent; the element must confirm that one. */
  function remount(payment) {
    prepared = payment;
    element.unmount();
    elements = elementsFor(payment);
    element = elements.create("payment", paymentOptions);
    element.mount(container);
    showTotal(payment.cartInfo);
  }

  const changed = () =>
    new PaymentError(`Your cart changed: the total is now ${formatAmount(shown.amount, shown.currency)}. ` +
      "Nothing was charged. Check the amount, then press Pay again.");

  async function pay() {
    if (piFirst) {
      // The cart may have changed since the element was mounted: /payments then hands
      // out another PaymentIntent (and cancels the old one), which must be shown first.
      const current = await call("/payments", { method: "POST", body: {} });
      if (current.paymentReference !== prepared.paymentReference) {
        remount(current);
        throw changed();
      }
    } else if (!sameAmount((await call("/config-element/payment")).cartInfo)) throw changed();
    const { error: invalid } = await elements.submit();
    if (invalid) throw new PaymentError(invalid.message);
    const payment = piFirst ? prepared : await call("/payments", { method: "POST", body: {} });
    // The PaymentIntent's own amount, in case the cart changed a moment ago.
    if (!sameAmount(payment.cartInfo)) throw changed();
    return confirmPayment(stripe, elements, payment, {
      billingDetails: parsed(payment.billingAddress, null),
      withClientSecret: !piFirst, // pi_first: the elements hold it
      processor: call,
    });
  }

  async function submit() {
    if (busy) return; // a second click while paying must not start a second payment
    busy = true;
    if (button) button.disabled = true;
    show("");
    try {
      complete(await pay(), completeUrl);
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
