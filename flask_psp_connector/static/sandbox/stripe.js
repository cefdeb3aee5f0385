/*
 * SANDBOX STAND-IN FOR STRIPE.JS: loaded only in the demo shop's sandbox mode (no Stripe
 * keys configured), never with real keys. It implements the part of Stripe.js that Stripe
 * integrations such as psp-payment.js, psp-express.js and the commercetools enabler use,
 * following Stripe.js's documented contract:
 *
 *   Stripe(publishableKey) → { elements(options), confirmPayment(options),
 *                              retrievePaymentIntent(clientSecret) }
 *   elements.create("payment", options) → { mount(target), on(event, handler), update(), unmount(), destroy() }
 *   elements.create("expressCheckout", options) → a wallet button ("Pay with Link (sandbox)")
 *     emitting ready, click, shippingaddresschange, shippingratechange, confirm and cancel
 *   elements.update({ amount }) → the total the wallet sheet shows
 *   elements.submit() → Promise<{ error? }>   (validates the fields, as Stripe.js does)
 *   stripe.confirmPayment({ elements, clientSecret, confirmParams: { return_url }, redirect })
 *     → Promise<{ error }> | Promise<{ paymentIntent }>, or a redirect to return_url with
 *       payment_intent, payment_intent_client_secret and redirect_status
 *   stripe.elements({ clientSecret }) (a PaymentIntent created first) confirms that
 *     PaymentIntent: confirmPayment then takes no clientSecret of its own, and
 *     elements.submit() is optional, as in Stripe.js
 *
 * With customerSessionClientSecret (a CustomerSession's client secret) the Payment
 * Element lists the customer's saved cards when the session's payment_method_redisplay
 * feature is enabled, and offers a "Save for future purchases" box when
 * payment_method_save is: a saved card confirms with its payment_method; a new card with
 * the box ticked confirms with setup_future_usage and allow_redisplay "always", and is
 * attached to the PaymentIntent's customer once the payment succeeds, as Stripe does.
 *
 * The card typed in is sent to the Stripe double, which answers as Stripe does for its
 * test cards (4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined, ...); when
 * the double asks for 3D Secure (4000 0025 0000 3155), a challenge dialog passes or fails
 * it. The "Bank redirect" tab stands for redirect-based methods: it leaves for a sandbox
 * bank page and comes back to return_url.
 *
 * It talks to the sandbox's Stripe API (/sandbox/stripe/v1/... on the server this script
 * was loaded from, so a storefront on another origin can pay) with the publishable key
 * and the PaymentIntent's (or CustomerSession's) client secret, as Stripe.js talks to
 * api.stripe.com; that API forwards to the local Stripe double, which decides declines,
 * 3D Secure and disputes from Stripe's test cards.
 *
 * As with Stripe.js, every method also works detached from its object
 * (const create = elements.create; create("expressCheckout", …)), an Elements group may
 * hold elements that are never mounted (confirmPayment uses the one that is mounted, or
 * the wallet whose confirm event is running), Stripe.version is 3, and billing details in
 * confirmParams.payment_method_data reach the PaymentMethod.
 */
(function () {
  "use strict";

  // Served by the sandbox itself, the script knows where its API is. Routed in place of
  // https://js.stripe.com/v3/ (browser tests in key mode), the API is next to the page.
  var SCRIPT = document.currentScript && document.currentScript.src;
  var API = new URL("/sandbox/stripe/v1", SCRIPT && SCRIPT.indexOf("https://js.stripe.com/") !== 0 ? SCRIPT
                                                                                                   : window.location.href).href;

  /** Bind every public method of the prototype to the object, as Stripe.js's methods are. */
  function bindMethods(object, prototype) {
    Object.keys(prototype).forEach(function (name) {
      if (name.charAt(0) !== "_" && typeof prototype[name] === "function") object[name] = prototype[name].bind(object);
    });
  }
  var STYLE = [
    ".sbx-element{font:inherit;color:var(--sbx-text,#30313d);display:grid;gap:.75rem;min-width:0;max-width:100%}",
    ".sbx-label{font-size:.7rem;letter-spacing:.08em;text-transform:uppercase;color:#8a4b00;background:#fff4e0;border:1px dashed #d98b00;border-radius:4px;padding:.2rem .5rem;justify-self:start}",
    ".sbx-tabs{display:flex;gap:.5rem}",
    ".sbx-tab{flex:1;min-width:0;padding:.6rem;border:1px solid #e0e0e6;border-radius:var(--sbx-radius,6px);background:var(--sbx-background,#fff);color:inherit;font:inherit;cursor:pointer;text-align:left}",
    ".sbx-tab[aria-selected=true]{border-color:var(--sbx-primary,#0570de);box-shadow:0 0 0 1px var(--sbx-primary,#0570de)}",
    ".sbx-row{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:.75rem}",
    ".sbx-field{display:grid;gap:.3rem;font-size:.85rem;min-width:0}",
    ".sbx-field input{font:inherit;width:100%;min-width:0;box-sizing:border-box;padding:.65rem .75rem;border:1px solid #e0e0e6;border-radius:var(--sbx-radius,6px);background:var(--sbx-background,#fff);color:inherit}",
    ".sbx-field input:focus{outline:none;border-color:var(--sbx-primary,#0570de);box-shadow:0 0 0 3px color-mix(in srgb,var(--sbx-primary,#0570de) 25%,transparent)}",
    ".sbx-field input[aria-invalid=true]{border-color:var(--sbx-danger,#df1b41)}",
    ".sbx-error{color:var(--sbx-danger,#df1b41);font-size:.8rem;min-height:1em}",
    ".sbx-note{font-size:.85rem;color:#6d6e78;margin:0}",
    ".sbx-saved{display:grid;gap:.5rem;border:0;margin:0;padding:0}",
    ".sbx-saved legend{font-size:.85rem;margin-bottom:.3rem}",
    ".sbx-option,.sbx-check{display:flex;align-items:center;gap:.6rem;font-size:.9rem}",
    ".sbx-option{padding:.6rem .75rem;border:1px solid #e0e0e6;border-radius:var(--sbx-radius,6px);background:var(--sbx-background,#fff);cursor:pointer}",
    ".sbx-option:has(input:checked){border-color:var(--sbx-primary,#0570de);box-shadow:0 0 0 1px var(--sbx-primary,#0570de)}",
    ".sbx-dialog{border:none;border-radius:12px;padding:1.5rem;max-width:min(24rem,calc(100vw - 2rem));box-sizing:border-box;box-shadow:0 20px 60px rgba(0,0,0,.3);font:inherit}",
    ".sbx-dialog::backdrop{background:rgba(10,20,40,.45)}",
    ".sbx-dialog h2{margin:.2rem 0 .6rem;font-size:1.15rem}",
    ".sbx-actions{display:flex;gap:.5rem;margin-top:1rem}",
    ".sbx-actions button{flex:1;padding:.6rem;border-radius:6px;border:1px solid #c9c9d1;background:#fff;font:inherit;cursor:pointer}",
    ".sbx-actions .sbx-ok{background:var(--sbx-primary,#0570de);border-color:var(--sbx-primary,#0570de);color:#fff}",
  ].join("\n");

  // Constructed stylesheets keep the page's Content-Security-Policy (style-src 'self') intact.
  function installStyles() {
    if (installStyles.done) return;
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    installStyles.done = true;
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function digits(value) { return (value || "").replace(/\D/g, ""); }

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var d = +number[number.length - 1 - i];
      if (i % 2) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function form(data) {
    var body = new URLSearchParams();
    Object.keys(data).forEach(function (key) { body.append(key, data[key]); });
    return body;
  }

  /** confirmParams.payment_method_data.billing_details as Stripe's form fields. */
  function billingFields(params) {
    var fields = {};
    var details = params && params.payment_method_data && params.payment_method_data.billing_details;
    (function flatten(value, prefix) {
      if (value === null || value === undefined || value === "") return;
      if (typeof value === "object") {
        Object.keys(value).forEach(function (key) { flatten(value[key], prefix + "[" + key + "]"); });
      } else {
        fields[prefix] = String(value);
      }
    })(details || {}, "payment_method_data[billing_details]");
    return fields;
  }

  function post(path, data) {
    return fetch(API + path, { method: "POST", body: form(data) }).then(function (response) {
      return response.json();
    });
  }

  function intentId(clientSecret) {
    return String(clientSecret || "").split("_secret_")[0];
  }

  function ask(title, text, ok, cancel) {
    return new Promise(function (resolve) {
      installStyles();
      var okButton = el("button", { type: "button", "class": "sbx-ok", text: ok });
      var cancelButton = el("button", { type: "button", text: cancel });
      var dialog = el("dialog", { "class": "sbx-dialog", "aria-label": title }, [
        el("span", { "class": "sbx-label", text: "Sandbox" }),
        el("h2", { text: title }),
        el("p", { "class": "sbx-note", text: text }),
        el("div", { "class": "sbx-actions" }, [cancelButton, okButton]),
      ]);
      function close(result) { dialog.close(); dialog.remove(); resolve(result); }
      okButton.addEventListener("click", function () { close(true); });
      cancelButton.addEventListener("click", function () { close(false); });
      dialog.addEventListener("cancel", function (event) { event.preventDefault(); close(false); });
      document.body.appendChild(dialog);
      dialog.showModal();
    });
  }

  function applyAppearance(node, appearance) {
    var variables = (appearance && appearance.variables) || {};
    var map = { colorPrimary: "--sbx-primary", colorBackground: "--sbx-background", colorText: "--sbx-text",
                colorDanger: "--sbx-danger", borderRadius: "--sbx-radius" };
    Object.keys(map).forEach(function (key) {
      if (variables[key]) node.style.setProperty(map[key], variables[key]);
    });
    if (variables.fontFamily) node.style.fontFamily = variables.fontFamily;
  }

  function PaymentElement(elements, options) {
    this._elements = elements;
    this._options = options || {};
    this._handlers = {};
    this._method = "card";
    this._node = null;
    bindMethods(this, PaymentElement.prototype);
  }

  PaymentElement.prototype.mount = function (target) {
    installStyles();
    var container = typeof target === "string" ? document.querySelector(target) : target;
    var self = this;
    function field(name, label, placeholder, autocomplete) {
      var input = el("input", { name: name, placeholder: placeholder, autocomplete: autocomplete, inputmode: "numeric",
                                "aria-label": label, "data-sandbox-field": name });
      var error = el("span", { "class": "sbx-error", "data-sandbox-error": name });
      input.addEventListener("input", function () {
        input.removeAttribute("aria-invalid");
        error.textContent = "";
        self._emit("change", { elementType: "payment", complete: self._validate(true) === null, empty: false,
                               value: { type: self._method } });
      });
      return el("label", { "class": "sbx-field" }, [document.createTextNode(label), input, error]);
    }
    var card = el("div", { "class": "sbx-card" }, [
      field("number", "Card number", "1234 1234 1234 1234", "cc-number"),
      el("div", { "class": "sbx-row" }, [field("expiry", "Expiration", "MM / YY", "cc-exp"), field("cvc", "CVC", "CVC", "cc-csc")]),
    ]);
    var redirect = el("p", { "class": "sbx-note", hidden: "hidden",
                             text: "You will be sent to a sandbox bank page to approve the payment, then brought back." });
    // SEPA Direct Debit: settled days later, so the PaymentIntent stays "processing" meanwhile.
    var debit = el("div", { "class": "sbx-card", hidden: "hidden" }, [
      el("label", { "class": "sbx-field" }, [document.createTextNode("IBAN"),
        el("input", { name: "iban", placeholder: "DE89 3704 0044 0532 0130 00", "aria-label": "IBAN",
                      "data-sandbox-field": "iban" })]),
    ]);
    var cardTab = el("button", { type: "button", "class": "sbx-tab", role: "tab", "aria-selected": "true", text: "Card" });
    var bankTab = el("button", { type: "button", "class": "sbx-tab", role: "tab", "aria-selected": "false", text: "Bank redirect" });
    var debitTab = el("button", { type: "button", "class": "sbx-tab", role: "tab", "aria-selected": "false", text: "SEPA Direct Debit" });
    function select(method) {
      self._method = method;
      cardTab.setAttribute("aria-selected", String(method === "card"));
      bankTab.setAttribute("aria-selected", String(method === "bank_redirect"));
      debitTab.setAttribute("aria-selected", String(method === "sepa_debit"));
      card.hidden = method !== "card";
      redirect.hidden = method !== "bank_redirect";
      debit.hidden = method !== "sepa_debit";
      self._emit("change", { elementType: "payment", value: { type: method } });
    }
    cardTab.addEventListener("click", function () { select("card"); });
    bankTab.addEventListener("click", function () { select("bank_redirect"); });
    debitTab.addEventListener("click", function () { select("sepa_debit"); });
    var tabs = el("div", { "class": "sbx-tabs", role: "tablist" }, [cardTab, bankTab, debitTab]);
    this._node = el("div", { "class": "sbx-element", "data-sandbox-element": "payment",
                             "data-layout": (this._options.layout && this._options.layout.type) || "tabs" }, [
      el("span", { "class": "sbx-label", text: "Sandbox: test payments only" }),
      tabs,
      card,
      redirect,
      debit,
    ]);
    applyAppearance(this._node, this._elements._options.appearance);
    container.appendChild(this._node);
    this._mounted = true;
    this._loadCustomer({ tabs: tabs, card: card, redirect: redirect, select: select }).then(function () {
      self._emit("ready", { elementType: "payment" });
    });
  };

  /**
   * What the CustomerSession lets the element show: the customer's saved cards (when
   * payment_method_redisplay is enabled) and the "save" box (payment_method_save).
   */
  PaymentElement.prototype._loadCustomer = function (parts) {
    var self = this;
    var secret = this._elements._options.customerSessionClientSecret;
    if (!secret) return Promise.resolve();
    var url = API + "/elements/sessions?key=" + encodeURIComponent(this._elements._stripe._key) +
              "&customer_session_client_secret=" + encodeURIComponent(secret);
    return fetch(url).then(function (response) { return response.json(); }).then(function (session) {
      if (session.error) return;
      var features = session.features || {};
      self._saveUsage = features.payment_method_save_usage || "off_session";
      if (features.payment_method_save === "enabled") {
        parts.card.appendChild(el("label", { "class": "sbx-check" }, [
          el("input", { type: "checkbox", "data-sandbox-field": "save" }),
          document.createTextNode("Save for future purchases"),
        ]));
      }
      var methods = features.payment_method_redisplay === "enabled" ? session.payment_methods || [] : [];
      if (!methods.length) return;
      function choose(id) {
        var saved = id !== "new";
        self._savedMethod = saved ? id : null;
        parts.tabs.hidden = saved;
        if (saved) {
          self._method = "saved";
          parts.card.hidden = true;
          parts.redirect.hidden = true;
          self._emit("change", { elementType: "payment", complete: true, value: { type: "card", payment_method: { id: id } } });
        } else {
          parts.select("card");
        }
      }
      function option(id, label) {
        var input = el("input", { type: "radio", name: "sbx-saved-method", value: id, "data-sandbox-saved": id });
        input.addEventListener("change", function () { if (input.checked) choose(id); });
        return el("label", { "class": "sbx-option" }, [input, document.createTextNode(label)]);
      }
      var options = methods.map(function (method) {
        var card = method.card || {};
        var brand = String(card.brand || "card");
        return option(method.id, brand.charAt(0).toUpperCase() + brand.slice(1) + " •••• " + card.last4 +
                      "   " + ("0" + card.exp_month).slice(-2) + "/" + String(card.exp_year).slice(-2));
      });
      options.push(option("new", "A new payment method"));
      self._node.insertBefore(el("fieldset", { "class": "sbx-saved" }, [el("legend", { text: "Saved cards" })].concat(options)),
                              parts.tabs);
      options[0].querySelector("input").checked = true;
      choose(methods[0].id);
    }).catch(function () {}); // without its saved cards the element still takes a new one
  };

  PaymentElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };
  PaymentElement.prototype.off = function (event, handler) {
    this._handlers[event] = (this._handlers[event] || []).filter(function (h) { return h !== handler; });
    return this;
  };
  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).forEach(function (handler) { handler(payload); });
  };
  PaymentElement.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  PaymentElement.prototype.unmount = function () { if (this._node) this._node.remove(); this._mounted = false; };
  PaymentElement.prototype.destroy = PaymentElement.prototype.unmount;

  PaymentElement.prototype._value = function (name) {
    return this._node.querySelector('[data-sandbox-field="' + name + '"]').value;
  };

  /** The first field error as Stripe.js reports it, or null; marks the field unless quiet. */
  PaymentElement.prototype._validate = function (quiet) {
    if (this._method === "sepa_debit") {
      var iban = this._value("iban").replace(/\s/g, "");
      return iban.length >= 14 ? null : { type: "validation_error", code: "incomplete_iban", message: "Your IBAN is incomplete." };
    }
    if (this._method !== "card") return null;
    var number = digits(this._value("number"));
    var expiry = digits(this._value("expiry"));
    var cvc = digits(this._value("cvc"));
    var problem = null;
    var now = new Date();
    var month = +expiry.slice(0, 2);
    var year = 2000 + +expiry.slice(2, 4);
    if (number.length < 13) problem = ["number", "incomplete_number", "Your card number is incomplete."];
    else if (!luhn(number)) problem = ["number", "invalid_number", "Your card number is invalid."];
    else if (expiry.length < 4) problem = ["expiry", "incomplete_expiry", "Your card's expiration date is incomplete."];
    else if (month < 1 || month > 12) problem = ["expiry", "invalid_expiry_month", "Your card's expiration month is invalid."];
    else if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
      problem = ["expiry", "invalid_expiry_year_past", "Your card's expiration year is in the past."];
    } else if (cvc.length < 3) problem = ["cvc", "incomplete_cvc", "Your card's security code is incomplete."];
    if (problem && !quiet) {
      this._node.querySelector('[data-sandbox-field="' + problem[0] + '"]').setAttribute("aria-invalid", "true");
      this._node.querySelector('[data-sandbox-error="' + problem[0] + '"]').textContent = problem[2];
    }
    return problem && { type: "validation_error", code: problem[1], message: problem[2] };
  };

  PaymentElement.prototype._card = function () {
    var expiry = digits(this._value("expiry"));
    return { number: digits(this._value("number")), exp_month: +expiry.slice(0, 2), exp_year: 2000 + +expiry.slice(2, 4),
             cvc: digits(this._value("cvc")) };
  };

  /*
   * Express Checkout Element: one wallet, "Link (sandbox)", whose sheet is a dialog in the
   * page with preset addresses. It follows the documented event flow: click (resolve
   * within the handler) → the sheet opens → shippingaddresschange with the redacted
   * address (resolve with shippingRates/lineItems, or reject) → shippingratechange →
   * confirm with the full billingDetails and shippingAddress (or paymentFailed()).
   * The sheet shows the Elements amount as its total, so elements.update({amount})
   * made before resolve() is what the buyer sees. The payment is confirmed with the
   * test card 4242 4242 4242 4242.
   */
  var WALLET_EMAIL = "jane@example.test";
  var WALLET_ADDRESSES = [
    { name: "Jane Doe", phone: "+49 30 1234567",
      address: { line1: "Invalidenstraße 12", line2: "", city: "Berlin", state: "", postal_code: "10115", country: "DE" } },
    { name: "Jeanne Martin", phone: "+33 1 23 45 67 89",
      address: { line1: "8 Rue de Rivoli", line2: "Appartement 4", city: "Paris", state: "", postal_code: "75001", country: "FR" } },
    { name: "Sam Carter", phone: "+1 212 555 0100",
      address: { line1: "350 Fifth Avenue", line2: "", city: "New York", state: "NY", postal_code: "10118", country: "US" } },
  ];
  var WALLET_CARD = { number: "4242424242424242", exp_month: 12, exp_year: new Date().getFullYear() + 1, cvc: "123" };
  var WALLET_STYLE = [
    ".sbx-wallet{width:100%;min-height:44px;border:0;border-radius:var(--sbx-radius,6px);background:#00d66f;color:#011e0f;font:inherit;font-weight:600;cursor:pointer}",
    ".sbx-wallet:disabled{opacity:.6;cursor:progress}",
    ".sbx-sheet{width:min(26rem,100vw - 2rem)}",
    ".sbx-sheet fieldset{border:0;padding:0;margin:0 0 .8rem;display:grid;gap:.35rem}",
    ".sbx-sheet legend{font-weight:600;margin-bottom:.3rem;padding:0}",
    ".sbx-sheet label{display:flex;gap:.5rem;align-items:baseline;font-size:.9rem}",
    ".sbx-sheet label[aria-disabled=true]{color:#8d8d99}",
    ".sbx-lines{margin:0;display:grid;gap:.2rem;font-size:.9rem}",
    ".sbx-lines div{display:flex;justify-content:space-between}",
    ".sbx-lines dd{margin:0}",
    ".sbx-lines .sbx-total{font-weight:700;border-top:1px solid #e0e0e6;padding-top:.3rem}",
  ].join("\n");

  function money(amount, currency) {
    var code = String(currency || "eur").toUpperCase();
    var format = new Intl.NumberFormat("en-IE", { style: "currency", currency: code });
    return format.format(amount / Math.pow(10, format.resolvedOptions().maximumFractionDigits));
  }

  function ExpressCheckoutElement(elements, options) {
    this._elements = elements;
    this._options = options || {};
    this._handlers = {};
    this._node = null;
    this._sheet = null;
    this._confirming = false;
    bindMethods(this, ExpressCheckoutElement.prototype);
  }
  ExpressCheckoutElement.prototype.on = PaymentElement.prototype.on;
  ExpressCheckoutElement.prototype.off = PaymentElement.prototype.off;
  ExpressCheckoutElement.prototype._emit = PaymentElement.prototype._emit;
  ExpressCheckoutElement.prototype.update = function (options) { Object.assign(this._options, options || {}); };

  ExpressCheckoutElement.prototype.mount = function (target) {
    installStyles();
    if (!installStyles.wallet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(WALLET_STYLE);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
      installStyles.wallet = true;
    }
    var self = this;
    var container = typeof target === "string" ? document.querySelector(target) : target;
    var button = el("button", { type: "button", "class": "sbx-wallet", "data-sandbox-wallet": "link",
                                text: "Pay with Link (sandbox)" });
    button.addEventListener("click", function () { self._click(); });
    this._node = el("div", { "class": "sbx-element", "data-sandbox-element": "expressCheckout" }, [
      el("span", { "class": "sbx-label", text: "Sandbox wallet: test payments only" }), button,
    ]);
    applyAppearance(this._node, this._elements._options.appearance);
    container.appendChild(this._node);
    this._mounted = true;
    setTimeout(function () {
      self._emit("ready", { elementType: "expressCheckout",
        availablePaymentMethods: { applePay: false, googlePay: false, link: true, paypal: false, amazonPay: false } });
    }, 0);
  };
  ExpressCheckoutElement.prototype.unmount = function () {
    this._close();
    if (this._node) this._node.remove();
    this._mounted = false;
  };
  ExpressCheckoutElement.prototype.destroy = ExpressCheckoutElement.prototype.unmount;

  ExpressCheckoutElement.prototype._click = function () {
    var self = this;
    if (this._sheet) return;
    var resolved = false;
    // A click handler that never calls resolve() leaves the sheet closed, as with Stripe.js.
    this._emit("click", { elementType: "expressCheckout", expressPaymentType: "link", resolve: function (details) {
      if (resolved || self._sheet) return;
      resolved = true;
      self._open(details || {});
    } });
  };

  ExpressCheckoutElement.prototype._open = function (details) {
    var allowed = details.allowedShippingCountries || this._options.allowedShippingCountries;
    this._state = {
      rates: details.shippingRates || this._options.shippingRates || [],
      lineItems: details.lineItems || [],
      allowed: allowed && allowed.length ? allowed : null,
      address: null, rate: null, busy: false, error: "", usable: false,
    };
    this._state.rate = this._state.rates[0] || null;
    this._sheet = el("dialog", { "class": "sbx-dialog sbx-sheet", "aria-label": "Link (sandbox)",
                                 "data-sandbox-sheet": "expressCheckout" });
    var self = this;
    this._sheet.addEventListener("cancel", function (event) { event.preventDefault(); self._cancel(); });
    document.body.appendChild(this._sheet);
    this._sheet.showModal();
    var first = WALLET_ADDRESSES.filter(function (a) { return self._ships(a); })[0];
    if (first) this._chooseAddress(first); else this._render();
  };

  ExpressCheckoutElement.prototype._ships = function (entry) {
    return !this._state.allowed || this._state.allowed.indexOf(entry.address.country) !== -1;
  };

  ExpressCheckoutElement.prototype._close = function () {
    if (this._sheet) { this._sheet.close(); this._sheet.remove(); }
    this._sheet = null;
    this._confirming = false;
  };

  ExpressCheckoutElement.prototype._cancel = function () {
    if (this._state.busy && this._confirming) return;
    this._close();
    this._emit("cancel", { elementType: "expressCheckout" });
  };

  /** Ask the merchant about an address (redacted, as wallets share it before payment). */
  ExpressCheckoutElement.prototype._chooseAddress = function (entry) {
    var self = this;
    var state = this._state;
    var done = false;
    state.address = entry;
    state.busy = true;
    state.usable = false;
    state.error = "";
    this._render();
    this._emit("shippingaddresschange", {
      elementType: "expressCheckout",
      name: entry.name,
      address: { city: entry.address.city, state: entry.address.state, postal_code: entry.address.postal_code,
                 country: entry.address.country },
      resolve: function (details) {
        if (done || state.address !== entry) return;
        done = true;
        details = details || {};
        if (details.shippingRates) { state.rates = details.shippingRates; state.rate = state.rates[0] || null; }
        if (details.lineItems) state.lineItems = details.lineItems;
        state.busy = false;
        state.usable = true;
        self._render();
      },
      reject: function () {
        if (done || state.address !== entry) return;
        done = true;
        state.busy = false;
        state.error = "The shop cannot ship to this address. Choose another one.";
        self._render();
      },
    });
  };

  ExpressCheckoutElement.prototype._chooseRate = function (rate) {
    var self = this;
    var state = this._state;
    var done = false;
    var previous = state.rate;
    state.rate = rate;
    state.busy = true;
    state.error = "";
    this._render();
    this._emit("shippingratechange", {
      elementType: "expressCheckout",
      shippingRate: rate,
      resolve: function (details) {
        if (done) return;
        done = true;
        details = details || {};
        if (details.shippingRates) state.rates = details.shippingRates;
        if (details.lineItems) state.lineItems = details.lineItems;
        state.busy = false;
        self._render();
      },
      reject: function () {
        if (done) return;
        done = true;
        state.rate = previous;
        state.busy = false;
        state.error = "This shipping method is not available.";
        self._render();
      },
    });
  };

  ExpressCheckoutElement.prototype._pay = function () {
    var self = this;
    var state = this._state;
    var entry = state.address;
    var failed = false;
    state.busy = true;
    state.error = "";
    this._confirming = true;
    this._render();
    var address = Object.assign({}, entry.address);
    this._billingDetails = { name: entry.name, email: WALLET_EMAIL, phone: entry.phone, address: Object.assign({}, address) };
    this._emit("confirm", {
      elementType: "expressCheckout",
      expressPaymentType: "link",
      billingDetails: { name: entry.name, email: WALLET_EMAIL, phone: entry.phone, address: address },
      shippingAddress: { name: entry.name, address: Object.assign({}, address) },
      shippingRate: state.rate,
      paymentFailed: function (options) {
        if (failed) return;
        failed = true;
        self._confirming = false;
        state.busy = false;
        state.error = (options && options.message) || "The payment failed. Try again or choose another way to pay.";
        self._render();
      },
    });
  };

  ExpressCheckoutElement.prototype._render = function () {
    var self = this;
    var state = this._state;
    var sheet = this._sheet;
    if (!sheet) return;
    var currency = this._elements._options.currency;
    var addresses = el("fieldset", {}, [el("legend", { text: "Ship to" })]);
    WALLET_ADDRESSES.forEach(function (entry, index) {
      var ships = self._ships(entry);
      var input = el("input", { type: "radio", name: "sbx-address", value: String(index),
                                "data-sandbox-address": entry.address.country });
      input.checked = state.address === entry;
      input.disabled = !ships || (state.busy && self._confirming);
      input.addEventListener("change", function () { self._chooseAddress(entry); });
      var a = entry.address;
      var text = entry.name + ", " + a.line1 + ", " + a.postal_code + " " + a.city + ", " + a.country +
                 (ships ? "" : " (not shipped to)");
      addresses.appendChild(el("label", { "aria-disabled": String(!ships) }, [input, document.createTextNode(text)]));
    });
    var rates = el("fieldset", {}, [el("legend", { text: "Shipping method" })]);
    state.rates.forEach(function (rate) {
      var input = el("input", { type: "radio", name: "sbx-rate", value: rate.id, "data-sandbox-rate": rate.id });
      input.checked = !!state.rate && state.rate.id === rate.id;
      input.disabled = state.busy || !state.usable;
      input.addEventListener("change", function () { self._chooseRate(rate); });
      var label = rate.displayName + " · " + (rate.amount ? money(rate.amount, currency) : "Free");
      rates.appendChild(el("label", {}, [input, document.createTextNode(label)]));
    });
    var lines = el("dl", { "class": "sbx-lines" });
    state.lineItems.forEach(function (item) {
      lines.appendChild(el("div", {}, [el("dt", { text: item.name }), el("dd", { text: money(item.amount, currency) })]));
    });
    lines.appendChild(el("div", { "class": "sbx-total" }, [
      el("dt", { text: "Total" }),
      el("dd", { "data-sandbox-total": "", text: money(this._elements._options.amount, currency) }),
    ]));
    var cancel = el("button", { type: "button", text: "Cancel" });
    cancel.addEventListener("click", function () { self._cancel(); });
    var pay = el("button", { type: "button", "class": "sbx-ok", "data-sandbox-pay": "",
                             text: this._confirming ? "Paying…" : "Pay" });
    pay.disabled = state.busy || !state.usable || !state.rate;
    pay.addEventListener("click", function () { self._pay(); });
    sheet.replaceChildren(
      el("span", { "class": "sbx-label", text: "Sandbox" }),
      el("h2", { text: "Link (sandbox)" }),
      el("p", { "class": "sbx-note", text: "Paying as " + WALLET_EMAIL + " with the test card •••• 4242." }),
      addresses, rates, lines,
      el("p", { "class": "sbx-error", role: "alert", "data-sandbox-sheet-error": "", text: state.error }),
      el("div", { "class": "sbx-actions" }, [cancel, pay])
    );
    sheet.setAttribute("aria-busy", String(state.busy));
  };

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._payment = null;
    this._express = null;
    bindMethods(this, Elements.prototype);
  }
  Elements.prototype.create = function (type, options) {
    if (type === "expressCheckout") {
      if (this._express) throw new Error("Can only create one Element of type expressCheckout.");
      this._express = new ExpressCheckoutElement(this, options);
      return this._express;
    }
    if (type !== "payment") throw new Error("The sandbox stand-in implements only the Payment and Express Checkout Elements.");
    if (this._payment) throw new Error("Can only create one Element of type payment.");
    this._payment = new PaymentElement(this, options);
    return this._payment;
  };
  Elements.prototype.getElement = function (type) {
    return type === "payment" ? this._payment : type === "expressCheckout" ? this._express || null : null;
  };
  Elements.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype.submit = function () {
    if (this._express && this._express._confirming) {
      this._submitted = true; // the wallet sheet collected everything
      return Promise.resolve({});
    }
    if (!this._payment || !this._payment._mounted) {
      return Promise.resolve({ error: { type: "validation_error", message: "No Payment Element is mounted." } });
    }
    var error = this._payment._validate(false);
    this._submitted = !error;
    return Promise.resolve(error ? { error: error } : {});
  };

  function Sandbox(publishableKey) {
    if (typeof publishableKey !== "string" || publishableKey.indexOf("pk_") !== 0) {
      throw new Error("Invalid value for Stripe(): apiKey should be a publishable key (pk_...).");
    }
    this._key = publishableKey;
    bindMethods(this, Sandbox.prototype);
  }

  Sandbox.prototype.elements = function (options) {
    Stripe.sandbox.elementsOptions.push(JSON.parse(JSON.stringify(options || {})));
    return new Elements(this, options);
  };

  Sandbox.prototype.retrievePaymentIntent = function (clientSecret) {
    var url = API + "/payment_intents/" + encodeURIComponent(intentId(clientSecret)) +
              "?client_secret=" + encodeURIComponent(clientSecret) + "&key=" + encodeURIComponent(this._key);
    return fetch(url).then(function (response) { return response.json(); }).then(function (body) {
      return body.error ? { error: body.error } : { paymentIntent: body };
    });
  };

  Sandbox.prototype.confirmPayment = function (options) {
    var self = this;
    var elements = options && options.elements;
    var clientSecret = options && options.clientSecret;
    var params = (options && options.confirmParams) || {};
    var redirect = (options && options.redirect) || "always";
    if (!elements || !(elements._payment || elements._express)) {
      return Promise.resolve({ error: { type: "invalid_request_error", message: "elements is required." } });
    }
    var bound = elements._options.clientSecret;
    if (bound && clientSecret) {
      return Promise.resolve({ error: { type: "invalid_request_error",
        message: "clientSecret was already given to stripe.elements(); do not pass it to stripe.confirmPayment() too." } });
    }
    clientSecret = clientSecret || bound;
    if (!clientSecret) {
      return Promise.resolve({ error: { type: "invalid_request_error", message: "clientSecret is required." } });
    }
    if (!elements._submitted && !bound) {
      return Promise.resolve({ error: { type: "invalid_request_error",
        message: "elements.submit() must be called before stripe.confirmPayment()." } });
    }
    if (!params.return_url) {
      return Promise.resolve({ error: { type: "invalid_request_error", message: "confirmParams.return_url is required." } });
    }
    if (elements._express && elements._express._confirming) {
      return this._confirmExpress(elements, clientSecret, params, redirect);
    }
    var id = intentId(clientSecret);
    var payment = elements._payment;
    if (!payment || !payment._mounted) {
      return Promise.resolve({ error: { type: "invalid_request_error",
        message: "confirmPayment needs a mounted Payment Element, or an Express Checkout Element in its confirm event." } });
    }

    function leave(status) {
      var target = new URL(params.return_url, window.location.href);
      target.searchParams.set("payment_intent", id);
      target.searchParams.set("payment_intent_client_secret", clientSecret);
      target.searchParams.set("redirect_status", status);
      window.location.assign(target.toString());
      return new Promise(function () {}); // the page is leaving
    }

    function confirm(card) {
      var data = Object.assign({ client_secret: clientSecret, key: self._key, return_url: params.return_url,
                                 "payment_method_data[type]": "card" }, billingFields(params));
      Object.keys(card).forEach(function (key) { data["payment_method_data[card][" + key + "]"] = card[key]; });
      var save = payment._node.querySelector('[data-sandbox-field="save"]');
      if (save && save.checked && payment._method === "card") {
        data.setup_future_usage = payment._saveUsage;
        data["payment_method_data[allow_redisplay]"] = "always";
      }
      return post("/payment_intents/" + encodeURIComponent(id) + "/confirm", data);
    }

    function confirmDebit() {
      var data = Object.assign({ client_secret: clientSecret, key: self._key, return_url: params.return_url,
                                 "payment_method_data[type]": "sepa_debit",
                                 "payment_method_data[sepa_debit][iban]": payment._value("iban").replace(/\s/g, "") },
                               billingFields(params));
      return post("/payment_intents/" + encodeURIComponent(id) + "/confirm", data);
    }

    function confirmSaved() {
      return post("/payment_intents/" + encodeURIComponent(id) + "/confirm", {
        client_secret: clientSecret, key: self._key, return_url: params.return_url, payment_method: payment._savedMethod,
      });
    }

    if (payment._method === "bank_redirect") {
      return ask("Sandbox Bank", "Approve this payment at your bank?", "Approve", "Decline").then(function (approved) {
        if (!approved) return leave("failed");
        return confirm({ number: "4242424242424242", exp_month: 12, exp_year: new Date().getFullYear() + 1, cvc: "123" })
          .then(function (intent) { return leave(intent.error ? "failed" : intent.status === "processing" ? "processing" : "succeeded"); });
      });
    }

    var confirming = payment._method === "saved" ? confirmSaved() : payment._method === "sepa_debit" ? confirmDebit()
                                                                   : confirm(payment._card());
    return confirming.then(function (intent) {
      if (intent.error) return { error: intent.error };
      if (intent.status !== "requires_action") return finish(intent);
      return ask("3D Secure authentication", "Your bank asks you to confirm this payment.", "Complete authentication",
                 "Fail authentication").then(function (passed) {
        return post("/payment_intents/" + encodeURIComponent(id) + "/_authenticate",
                    { client_secret: clientSecret, key: self._key, success: String(passed) });
      }).then(function (authenticated) {
        if (authenticated.error) return { error: authenticated.error };
        if (authenticated.last_payment_error) {
          return { error: Object.assign({ type: "card_error", payment_intent: authenticated }, authenticated.last_payment_error,
            { message: "We are unable to authenticate your payment method. Please choose a different payment method and try again." }) };
        }
        return finish(authenticated);
      });
    });

    function finish(intent) {
      return redirect === "always" ? leave(intent.status === "processing" ? "processing" : "succeeded") : { paymentIntent: intent };
    }
  };

  /** Confirm for the Express Checkout Element: the wallet pays with its test card. */
  Sandbox.prototype._confirmExpress = function (elements, clientSecret, params, redirect) {
    var id = intentId(clientSecret);
    var wallet = { payment_method_data: { billing_details: elements._express._billingDetails || {} } };
    var given = (params.payment_method_data && params.payment_method_data.billing_details) || {};
    wallet.payment_method_data.billing_details = Object.assign({}, wallet.payment_method_data.billing_details, given);
    var data = Object.assign({ client_secret: clientSecret, key: this._key, return_url: params.return_url,
                               "payment_method_data[type]": "card" }, billingFields(wallet));
    Object.keys(WALLET_CARD).forEach(function (key) { data["payment_method_data[card][" + key + "]"] = WALLET_CARD[key]; });
    return post("/payment_intents/" + encodeURIComponent(id) + "/confirm", data).then(function (intent) {
      if (intent.error) return { error: intent.error };
      elements._express._close();
      if (redirect !== "always") return { paymentIntent: intent };
      var target = new URL(params.return_url, window.location.href);
      target.searchParams.set("payment_intent", id);
      target.searchParams.set("payment_intent_client_secret", clientSecret);
      target.searchParams.set("redirect_status", intent.status === "processing" ? "processing" : "succeeded");
      window.location.assign(target.toString());
      return new Promise(function () {}); // the page is leaving
    });
  };

  function Stripe(publishableKey) { return new Sandbox(publishableKey); }
  /** The Stripe.js major version, which Stripe's loader (@stripe/stripe-js) checks. */
  Stripe.version = 3;
  /** What the stand-in was given, for people checking their integration in the sandbox. */
  Stripe.sandbox = { elementsOptions: [] };
  window.Stripe = Stripe;
})();
