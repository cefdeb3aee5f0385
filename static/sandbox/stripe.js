/*
 * SANDBOX STAND-IN FOR STRIPE.JS: loaded only in the demo shop's sandbox mode (no Stripe
 * keys configured), never with real keys. It implements the part of Stripe.js that
 * psp-payment.js uses, following Stripe.js's documented contract:
 *
 *   Stripe(publishableKey) → { elements(options), confirmPayment(options),
 *                              retrievePaymentIntent(clientSecret) }
 *   elements.create("payment", options) → { mount(target), on(event, handler), update(), unmount(), destroy() }
 *   elements.submit() → Promise<{ error? }>   (validates the fields, as Stripe.js does)
 *   stripe.confirmPayment({ elements, clientSecret, confirmParams: { return_url }, redirect })
 *     → Promise<{ error }> | Promise<{ paymentIntent }>, or a redirect to return_url with
 *       payment_intent, payment_intent_client_secret and redirect_status
 *
 * Test cards: 4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined
 * (card_declined); 4000 0025 0000 3155 asks for 3D Secure in a challenge dialog that can
 * be passed or failed. The "Bank redirect" tab stands for redirect-based methods: it
 * leaves for a sandbox bank page and comes back to return_url.
 *
 * It talks to the shop's sandbox Stripe API (/sandbox/stripe/v1/...) with the
 * publishable key and the PaymentIntent's client secret, as Stripe.js talks to
 * api.stripe.com; that API forwards to the local Stripe double.
 */
(function () {
  "use strict";

  var API = window.location.origin + "/sandbox/stripe/v1";
  var STYLE = [
    ".sbx-element{font:inherit;color:var(--sbx-text,#30313d);display:grid;gap:.75rem}",
    ".sbx-label{font-size:.7rem;letter-spacing:.08em;text-transform:uppercase;color:#8a4b00;background:#fff4e0;border:1px dashed #d98b00;border-radius:4px;padding:.2rem .5rem;justify-self:start}",
    ".sbx-tabs{display:flex;gap:.5rem}",
    ".sbx-tab{flex:1;padding:.6rem;border:1px solid #e0e0e6;border-radius:var(--sbx-radius,6px);background:var(--sbx-background,#fff);color:inherit;font:inherit;cursor:pointer;text-align:left}",
    ".sbx-tab[aria-selected=true]{border-color:var(--sbx-primary,#0570de);box-shadow:0 0 0 1px var(--sbx-primary,#0570de)}",
    ".sbx-row{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}",
    ".sbx-field{display:grid;gap:.3rem;font-size:.85rem}",
    ".sbx-field input{font:inherit;padding:.65rem .75rem;border:1px solid #e0e0e6;border-radius:var(--sbx-radius,6px);background:var(--sbx-background,#fff);color:inherit}",
    ".sbx-field input:focus{outline:none;border-color:var(--sbx-primary,#0570de);box-shadow:0 0 0 3px color-mix(in srgb,var(--sbx-primary,#0570de) 25%,transparent)}",
    ".sbx-field input[aria-invalid=true]{border-color:var(--sbx-danger,#df1b41)}",
    ".sbx-error{color:var(--sbx-danger,#df1b41);font-size:.8rem;min-height:1em}",
    ".sbx-note{font-size:.85rem;color:#6d6e78;margin:0}",
    ".sbx-dialog{border:none;border-radius:12px;padding:1.5rem;max-width:24rem;box-shadow:0 20px 60px rgba(0,0,0,.3);font:inherit}",
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
    var cardTab = el("button", { type: "button", "class": "sbx-tab", role: "tab", "aria-selected": "true", text: "Card" });
    var bankTab = el("button", { type: "button", "class": "sbx-tab", role: "tab", "aria-selected": "false", text: "Bank redirect" });
    function select(method) {
      self._method = method;
      cardTab.setAttribute("aria-selected", String(method === "card"));
      bankTab.setAttribute("aria-selected", String(method === "bank_redirect"));
      card.hidden = method !== "card";
      redirect.hidden = method === "card";
      self._emit("change", { elementType: "payment", value: { type: method } });
    }
    cardTab.addEventListener("click", function () { select("card"); });
    bankTab.addEventListener("click", function () { select("bank_redirect"); });
    this._node = el("div", { "class": "sbx-element", "data-sandbox-element": "payment",
                             "data-layout": (this._options.layout && this._options.layout.type) || "tabs" }, [
      el("span", { "class": "sbx-label", text: "Sandbox: test payments only" }),
      el("div", { "class": "sbx-tabs", role: "tablist" }, [cardTab, bankTab]),
      card,
      redirect,
    ]);
    applyAppearance(this._node, this._elements._options.appearance);
    container.appendChild(this._node);
    setTimeout(function () { self._emit("ready", { elementType: "payment" }); }, 0);
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
  PaymentElement.prototype.unmount = function () { if (this._node) this._node.remove(); };
  PaymentElement.prototype.destroy = PaymentElement.prototype.unmount;

  PaymentElement.prototype._value = function (name) {
    return this._node.querySelector('[data-sandbox-field="' + name + '"]').value;
  };

  /** The first field error as Stripe.js reports it, or null; marks the field unless quiet. */
  PaymentElement.prototype._validate = function (quiet) {
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

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._payment = null;
  }
  Elements.prototype.create = function (type, options) {
    if (type !== "payment") throw new Error("The sandbox stand-in implements only the Payment Element.");
    if (this._payment) throw new Error("Can only create one Element of type payment.");
    this._payment = new PaymentElement(this, options);
    return this._payment;
  };
  Elements.prototype.getElement = function (type) { return type === "payment" ? this._payment : null; };
  Elements.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype.submit = function () {
    if (!this._payment) return Promise.resolve({ error: { type: "validation_error", message: "No Payment Element is mounted." } });
    var error = this._payment._validate(false);
    this._submitted = !error;
    return Promise.resolve(error ? { error: error } : {});
  };

  function Sandbox(publishableKey) {
    if (typeof publishableKey !== "string" || publishableKey.indexOf("pk_") !== 0) {
      throw new Error("Invalid value for Stripe(): apiKey should be a publishable key (pk_...).");
    }
    this._key = publishableKey;
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
    if (!elements || !elements._payment) {
      return Promise.resolve({ error: { type: "invalid_request_error", message: "elements is required." } });
    }
    if (!elements._submitted) {
      return Promise.resolve({ error: { type: "invalid_request_error",
        message: "elements.submit() must be called before stripe.confirmPayment()." } });
    }
    if (!params.return_url) {
      return Promise.resolve({ error: { type: "invalid_request_error", message: "confirmParams.return_url is required." } });
    }
    var id = intentId(clientSecret);
    var payment = elements._payment;

    function leave(status) {
      var target = new URL(params.return_url, window.location.href);
      target.searchParams.set("payment_intent", id);
      target.searchParams.set("payment_intent_client_secret", clientSecret);
      target.searchParams.set("redirect_status", status);
      window.location.assign(target.toString());
      return new Promise(function () {}); // the page is leaving
    }

    function confirm(card) {
      var data = { client_secret: clientSecret, key: self._key, return_url: params.return_url,
                   "payment_method_data[type]": "card" };
      Object.keys(card).forEach(function (key) { data["payment_method_data[card][" + key + "]"] = card[key]; });
      return post("/payment_intents/" + encodeURIComponent(id) + "/confirm", data);
    }

    if (payment._method === "bank_redirect") {
      return ask("Sandbox Bank", "Approve this payment at your bank?", "Approve", "Decline").then(function (approved) {
        if (!approved) return leave("failed");
        return confirm({ number: "4242424242424242", exp_month: 12, exp_year: new Date().getFullYear() + 1, cvc: "123" })
          .then(function (intent) { return leave(intent.error ? "failed" : intent.status === "processing" ? "processing" : "succeeded"); });
      });
    }

    return confirm(payment._card()).then(function (intent) {
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

  function Stripe(publishableKey) { return new Sandbox(publishableKey); }
  /** What the stand-in was given, for people checking their integration in the sandbox. */
  Stripe.sandbox = { elementsOptions: [] };
  window.Stripe = Stripe;
})();
