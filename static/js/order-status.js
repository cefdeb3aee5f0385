// Follows an order's payment state on the order page until it is final.
// The page names the status endpoint in data-status-url; no reload is needed.

const POLL_MS = 1000;
const MAX_POLLS = 600;

const panel = document.querySelector("[data-status-url]");

function render(status) {
  const badge = panel.querySelector("[data-payment-state]");
  if (badge && status.paymentStateLabel) {
    badge.textContent = status.paymentStateLabel;
    badge.className = `state state-${String(status.paymentState).toLowerCase()}`;
  }
  const number = panel.querySelector("[data-order-number]");
  if (number && status.orderNumber) {
    number.textContent = status.orderNumber;
  }
  const retry = panel.querySelector("[data-retry]");
  if (retry) {
    retry.hidden = status.paymentState !== "Failed" && status.paymentState !== "CartChanged";
  }
  const heading = panel.querySelector("h1");
  if (heading && status.orderNumber) {
    heading.textContent = "Thank you! Your order is confirmed.";
  } else if (heading && status.paymentState === "Processing") {
    heading.textContent = "Thank you! Your payment is processing.";
  }
}

async function poll(count) {
  let status;
  try {
    const response = await fetch(panel.dataset.statusUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) {
      return;
    }
    status = await response.json();
  } catch {
    status = null; // a network blip: try again on the next tick
  }
  if (status) {
    render(status);
    if (status.final) {
      panel.dataset.final = "true";
      return;
    }
  }
  if (count < MAX_POLLS) {
    setTimeout(() => poll(count + 1), POLL_MS);
  }
}

if (panel && panel.dataset.final !== "true") {
  poll(0);
}
