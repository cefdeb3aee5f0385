/**
 * psp-express.js: mounts Stripe's Express Checkout Element (Apple Pay, Google Pay, Link)
 * and pays through the connector's processor API, the way the upstream enabler's
 * express drop-in does. The shop prices everything; the wallet sheet only chooses.
 *
 * Markup (no inline script needed; Stripe.js must be loaded before this module):
 *
 *   <section data-express-section hidden>
 *     <div data-express-checkout
 *          data-processor-url="https://shop.example"   the connector's routes
 *          data-amount="4213" data-currency="EUR"       the server's estimate, until the cart is known
 *          data-csrf-token="…"                          sent as X-CSRFToken to the shop's endpoints
 *          data-prepare-url="/express/prepare"          click → {sessionId, completeUrl, shippingRates, allowedShippingCountries}
 *          data-prepare-body='{"source": "cart"}'       JSON posted to data-prepare-url
 *          data-quantity-from="#quantity"               optional: input whose value is sent as "quantity"
 *          data-shipping-address-url="/express/shipping-address"   {address, name} → {shippingRates}
 *          data-shipping-rate-url="/express/shipping-rate"         {shippingRateId} → {}
 *          data-details-url="/express/details"></div>             {email, shippingAddress, billingDetails}
 *     <p data-psp-message role="alert" hidden></p>
 *   </section>
 *
 * The section is shown once the element reports a wallet the browser can pay with.
 * Totals and line items always come from the processor's GET /express-payment-data,
 * after the shop has stored the buyer's choices on the cart. On success the browser
 * goes to the shop's completeUrl with ?paymentReference=<payment id>. The container
 * also receives psp:ready, psp:complete (detail: {paymentReference, outcome}),
 * psp:amountchange (detail: {amount}), psp:cancel and psp:error.
 *
 * Right before confirming, the total is read again (and checked against the
 * PaymentIntent's own amount): if the cart changed since the sheet showed it, nothing
 * is confirmed, the shopper is told the new total and pays it from a new sheet.
 */

import { PaymentError, confirmPayment, feedback, formatAmount, parsed, request } from "./psp-common.js";

function cents(amount) {
  return typeof amount === "number" ? amount : Number(amount?.centAmount ?? 0);
}

/** The processor's express payment data as the element and wallet want them. */
function walletTotals(data) {
  return {
    amount: cents(data.totalPrice),
    lineItems: (data.lineItems || []).map((item) => ({ name: item.name, amount: cents(item.amount) })),
  };
}

/**
 * Mount the Express Checkout Element into `container`.
 *
 * @param {HTMLElement} container carries the data attributes described above.
 * @param {{onComplete?: Function, onError?: Function}} [options] called instead of the
 *   default navigation / inline message.
 */
export async function mountExpress(container, options = {}) {
  const data = container.dataset;
  const processorUrl = data.processorUrl.replace(/\/$/, "");
  const section = container.closest("[data-express-section]");
  const message = section?.querySelector("[data-psp-message]");
  let checkout = null; // the shop's answer to prepare: session id, order page, rates
  const { show, emit, fail, complete } = feedback(container, message, options);
  const shop = (url, body) =>
    request(url, { method: "POST", headers: { "X-CSRFToken": data.csrfToken }, body });
  const processor = (path, { method = "GET", body, express = false } = {}) => {
    const headers = { "X-Session-Id": checkout.sessionId };
    if (express) headers["x-express-checkout"] = "true";
    return request(`${processorUrl}${path}`, { method, headers, body });
  };

  const config = await request(`${processorUrl}/express-config`, { method: "POST", body: {} });
  const stripe = window.Stripe(config.publishableKey);
  const elementsOptions = {
    mode: "payment",
    amount: Number(data.amount),
    currency: data.currency.toLowerCase(),
    captureMethod: config.captureMethod,
  };
  const appearance = parsed(config.appearance, undefined);
  if (appearance !== undefined) elementsOptions.appearance = appearance;
  const elements = stripe.elements(elementsOptions);
  const element = elements.create("expressCheckout", {
    shippingAddressRequired: true,
    billingAddressRequired: true,
    ...parsed(config.expressElementOptions, {}),
  });

  let shown = null; // the total the wallet sheet shows

  /** Totals of the session's cart, now priced by the shop; the element shows the same amount. */
  async function refreshTotals() {
    const totals = walletTotals(await processor("/express-payment-data"));
    elements.update({ amount: totals.amount });
    shown = totals.amount;
    return totals;
  }

  /** A PaymentError telling the shopper the cart's new total, when it is not what the sheet showed. */
  function changedFrom(amount) {
    if (amount === undefined || amount === shown) return null;
    shown = amount;
    elements.update({ amount });
    emit("psp:amountchange", { amount });
    return new PaymentError(`Your cart changed: the total is now ${formatAmount(amount, data.currency)}. ` +
      "Nothing was charged. Please pay again.");
  }

  function prepareBody() {
    const body = parsed(data.prepareBody, {});
    if (data.quantityFrom) {
      const input = document.querySelector(data.quantityFrom);
      if (input) body.quantity = input.value.trim();
    }
    return body;
  }

  element.on("ready", (event) => {
    const wallets = event.availablePaymentMethods;
    if (section && wallets && Object.values(wallets).some(Boolean)) section.hidden = false;
    emit("psp:ready", { availablePaymentMethods: wallets || null });
  });

  element.on("click", async (event) => {
    show("");
    try {
      checkout = await shop(data.prepareUrl, prepareBody());
      const totals = await refreshTotals();
      event.resolve({
        emailRequired: true,
        lineItems: totals.lineItems,
        shippingRates: checkout.shippingRates,
        allowedShippingCountries: checkout.allowedShippingCountries,
      });
    } catch (error) {
      fail(error); // without resolve() the sheet stays closed
    }
  });

  element.on("shippingaddresschange", async (event) => {
    try {
      const answer = await shop(data.shippingAddressUrl, { name: event.name, address: event.address });
      const totals = await refreshTotals();
      event.resolve({ shippingRates: answer.shippingRates, lineItems: totals.lineItems });
    } catch (error) {
      event.reject();
      fail(error);
    }
  });

  element.on("shippingratechange", async (event) => {
    try {
      await shop(data.shippingRateUrl, { shippingRateId: event.shippingRate.id });
      const totals = await refreshTotals();
      event.resolve({ lineItems: totals.lineItems });
    } catch (error) {
      event.reject();
      fail(error);
    }
  });

  element.on("cancel", () => emit("psp:cancel", {}));

  async function pay(event) {
    const { error: invalid } = await elements.submit();
    if (invalid) throw new PaymentError(invalid.message);
    const billingDetails = event.billingDetails || {};
    await shop(data.detailsUrl, {
      email: billingDetails.email,
      shippingAddress: event.shippingAddress,
      billingDetails,
    });
    const changed = changedFrom(walletTotals(await processor("/express-payment-data")).amount);
    if (changed) throw changed;
    const payment = await processor("/payments", { express: true });
    const moved = changedFrom(payment.cartInfo?.amount);
    if (moved) throw moved;
    return confirmPayment(stripe, elements, payment, {
      billingDetails,
      processor: (path, init) => processor(path, { ...init, express: true }),
    });
  }

  element.on("confirm", async (event) => {
    show("");
    try {
      complete(await pay(event), checkout.completeUrl);
    } catch (error) {
      event.paymentFailed?.({ reason: "fail" });
      fail(error);
    }
  });

  const target = document.createElement("div");
  container.appendChild(target);
  element.mount(target);
  return { elements, element };
}

for (const container of document.querySelectorAll("[data-express-checkout][data-processor-url]")) {
  mountExpress(container).catch((error) => {
    // The page works without the wallets: the section simply stays hidden.
    container.dispatchEvent(new CustomEvent("psp:error", { detail: { message: error.message }, bubbles: true }));
  });
}
