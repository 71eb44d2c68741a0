/* Guest payment step. The card never reaches our server:
 * - Stripe: Stripe.js's Payment Element collects it and confirms the PaymentIntent with Stripe
 *   (3-D Secure included), then Stripe sends the browser to our return_url.
 * - Sandbox: this page turns a Stripe test card number into Stripe's test PaymentMethod id and
 *   sends only that id to the sandbox's stand-in for api.stripe.com. */
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) return;
  var errorBox = document.getElementById("pay-error");
  var button = document.getElementById("pay-button");
  var data = form.dataset;

  function showError(message) {
    // One place, replaced each time: a second decline never stacks a second message.
    errorBox.textContent = message;
    errorBox.hidden = false;
    button.disabled = false;
    button.textContent = "Pay and start charging";
    errorBox.focus && errorBox.setAttribute("tabindex", "-1");
    errorBox.focus();
  }
  function busy() {
    errorBox.hidden = true;
    button.disabled = true;
    button.textContent = "Paying…";
  }
  function returnTo(intentId) {
    var sep = data.returnUrl.indexOf("?") === -1 ? "?" : "&";
    window.location.assign(data.returnUrl + sep + "payment_intent=" + encodeURIComponent(intentId));
  }

  if (data.mode === "stripe") {
    var stripe = window.Stripe(data.publishableKey);
    var elements = stripe.elements({ clientSecret: data.clientSecret });
    elements.create("payment").mount("#payment-element");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy();
      stripe.confirmPayment({ elements: elements, confirmParams: { return_url: data.returnUrl } })
        .then(function (result) { if (result.error) showError(result.error.message); });
    });
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var card = window.SandboxCard.read();  // static/billing/sandbox_card.js
    if (card.error) return showError(card.error);
    var method = card.method;
    busy();
    var body = new URLSearchParams({ client_secret: data.clientSecret, payment_method: method, return_url: data.returnUrl });
    fetch(data.confirmUrl, { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (intent) {
        if (intent.error) return showError(intent.error.message);
        if (intent.status === "requires_action" && intent.next_action && intent.next_action.redirect_to_url) {
          window.location.assign(intent.next_action.redirect_to_url.url);
          return;
        }
        returnTo(intent.id);
      })
      .catch(function () { showError("The payment could not be sent. Check your connection and try again."); });
  });
})();
