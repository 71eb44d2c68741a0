/* Save a card for later (SetupIntent). The card never reaches our server:
 * - Stripe: the Payment Element collects it and stripe.confirmSetup saves it at Stripe, which
 *   sends the browser to our return_url with ?setup_intent=…
 * - Sandbox: this page turns a Stripe test card number into Stripe's test PaymentMethod id and
 *   sends only that id to the sandbox's stand-in for api.stripe.com. */
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) return;
  var errorBox = document.getElementById("card-error");
  var button = document.getElementById("card-button");
  var data = form.dataset;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    button.disabled = false;
    button.textContent = "Save card";
    errorBox.setAttribute("tabindex", "-1");
    errorBox.focus();
  }
  function busy() {
    errorBox.hidden = true;
    button.disabled = true;
    button.textContent = "Saving…";
  }

  if (data.mode === "stripe") {
    var stripe = window.Stripe(data.publishableKey);
    var elements = stripe.elements({ clientSecret: data.clientSecret });
    elements.create("payment").mount("#payment-element");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy();
      stripe.confirmSetup({ elements: elements, confirmParams: { return_url: data.returnUrl } })
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
    var body = new URLSearchParams({ client_secret: data.clientSecret, payment_method: method,
                                     exp_month: card.exp_month, exp_year: card.exp_year });
    fetch(data.confirmUrl, { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (intent) {
        if (intent.error) return showError(intent.error.message);
        var sep = data.returnUrl.indexOf("?") === -1 ? "?" : "&";
        window.location.assign(data.returnUrl + sep + "setup_intent=" + encodeURIComponent(intent.id));
      })
      .catch(function () { showError("The card could not be sent. Check your connection and try again."); });
  });
})();
